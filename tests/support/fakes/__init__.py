"""Fake container builders and serving scripts for the container tests."""
