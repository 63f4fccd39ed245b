"""byoc's operations, one module each, importable without the CLI."""
