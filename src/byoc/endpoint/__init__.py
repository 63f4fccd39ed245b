"""One endpoint as byoc sees it: its description (`view`), its revision history (`revisions`), the update lock (`lock`)."""
