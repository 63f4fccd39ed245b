"""An advisory lock on an endpoint, kept as its `byoc:lock` tag, so two byoc runs never update it at once.

The value is "<host> <pid> <epoch>". A lock left by a process that died (same host, pid gone)
or older than STALE_SECONDS is taken over; anything else refuses the second run.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Optional

from byoc.aws.client import Aws
from byoc.endpoint import revisions
from byoc.errors import AuthError, PreflightFailed
from byoc.timespec import iso

STALE_SECONDS = 6 * 3600


def _alive(host: str, pid: int) -> bool:
    if host != socket.gethostname()[:60]:
        return True  # cannot tell: trust it until it is stale
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(value: Optional[str]) -> Optional[str]:
    """Who holds a lock value, or None when it is free or stale."""
    if not value:
        return None
    parts = value.split(" ")
    try:
        host, pid, since = parts[0], int(parts[1]), int(parts[2])
    except (IndexError, ValueError):
        return None
    if pid == os.getpid() and host == socket.gethostname()[:60]:
        return None
    if time.time() - since > STALE_SECONDS or not _alive(host, pid):
        return None
    return f"process {pid} on {host} since {iso(since * 1000)}"


class EndpointLock:
    def __init__(self, aws: Aws, endpoint: str, arn: str) -> None:
        self.aws, self.endpoint, self.arn = aws, endpoint, arn
        self.held = False

    def acquire(self, extra_tags: Optional[list] = None) -> None:
        """Take the lock; `extra_tags` are written to the endpoint in the same AddTags call."""
        # Read the tag now, not as planned: another run may have taken the lock since.
        who = holder(revisions.list_tags(self.aws, self.arn).get(revisions.T_LOCK))
        if who:
            raise PreflightFailed(f"Another byoc run ({who}) is updating {self.endpoint}.",
                                  f"Wait for it, or watch it with `byoc status {self.endpoint} --watch`.")
        value = f"{socket.gethostname()[:60]} {os.getpid()} {int(time.time())}"
        try:
            self.aws.sagemaker.add_tags(ResourceArn=self.arn,
                                        Tags=[{"Key": revisions.T_LOCK, "Value": value}] + list(extra_tags or []))
            current = revisions.list_tags(self.aws, self.arn).get(revisions.T_LOCK)
        except AuthError:
            return  # tagging denied: the endpoint status check is the only guard left
        if current != value:
            raise PreflightFailed(f"Another byoc run took the lock on {self.endpoint} at the same moment.",
                                  f"Watch it with `byoc status {self.endpoint} --watch`.")
        self.held = True

    def release(self) -> None:
        if not self.held:
            return
        try:
            self.aws.sagemaker.delete_tags(ResourceArn=self.arn, TagKeys=[revisions.T_LOCK])
        except Exception:  # releasing must never mask the outcome; a stale lock is taken over later
            pass
        self.held = False
