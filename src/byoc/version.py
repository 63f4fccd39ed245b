"""byoc's version, at the bottom layer so that any module may name it (the AWS client's user agent)."""

__version__ = "0.1.0"
