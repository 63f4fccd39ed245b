"""The command line: parses arguments, calls the `byoc` library, renders results."""
