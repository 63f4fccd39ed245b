"""Permissions: the least-privilege policy generator and `byoc doctor`."""
