"""The one thin layer between byoc and AWS: clients, retries, error translation, partitions."""
