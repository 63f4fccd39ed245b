"""byoc: bring your own container to a SageMaker inference endpoint.

The operations are importable (`byoc.update`, `byoc.restore`, `byoc.rollback`, `byoc.history`,
`byoc.status`, `byoc.verify`, `byoc.diagnose`, `byoc.session`; see `byoc.api`); the CLI
(`byoc.cli`) only parses arguments and renders results. They load on first use, so importing
byoc (and `byoc --help`) stays fast.
"""

from byoc.version import __version__

_API = ("session", "update", "restore", "rollback", "history", "status", "verify", "diagnose")
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> object:
    if name in _API:
        from byoc import api

        return getattr(api, name)
    raise AttributeError(f"module 'byoc' has no attribute {name!r}")
