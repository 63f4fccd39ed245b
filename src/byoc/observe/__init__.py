"""Reading an endpoint without changing it: listings, status, logs, verification, diagnosis."""
