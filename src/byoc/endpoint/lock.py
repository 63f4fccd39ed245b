"""An advisory lock on an endpoint, kept in its tags, so two byoc runs never update it at once.

A run announces itself with a tag of its own, `byoc:lock:<host>:<pid>` (and `byoc:lock`, which
`status` and earlier byoc versions read), both valued "<host> <pid> <epoch>", in the same AddTags
as the attempt's start tags; then it reads the tags once. Another live run's tag there means the
endpoint is taken: the run withdraws what it wrote and refuses. Two runs announcing at the same
moment both see each other and both refuse; a run announcing after another has seen the other's
tag. One AddTags and one ListTags, where a single shared tag needs a read before the write (the
write would replace another run's) and one after it. The tags the plan read stand in for a read
before: a run already holding the endpoint then is refused without any write.
A lock left by a process that died (same host, pid gone) or older than STALE_SECONDS is taken over
(and its tag removed when the run that took it over releases the endpoint).
"""

from __future__ import annotations

import os
import socket
import time
from typing import Optional

from byoc.aws.client import Aws
from byoc.endpoint import revisions
from byoc.errors import AuthError, AwsError, PreflightFailed
from byoc.timespec import iso

STALE_SECONDS = 6 * 3600
LOCK_KEYS = revisions.T_LOCK + ":"  # byoc:lock:<host>:<pid>, one key per run


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


def holders(tags: dict, mine: Optional[str] = None) -> list:
    """Who holds the endpoint according to its `tags` (live runs other than the one whose own lock
    key is `mine`): the per-run keys, and `byoc:lock` when an earlier version wrote it alone."""
    own = {k: v for k, v in tags.items() if k.startswith(LOCK_KEYS) and k != mine}
    found = [holder(v) for v in own.values()]
    shared = tags.get(revisions.T_LOCK)
    if shared and shared not in own.values() and shared != tags.get(mine or ""):
        found.append(holder(shared))
    return [who for who in found if who]


class EndpointLock:
    def __init__(self, aws: Aws, endpoint: str, arn: str) -> None:
        self.aws, self.endpoint, self.arn = aws, endpoint, arn
        self.held = False
        self.stale: list = []
        self.key = f"{LOCK_KEYS}{socket.gethostname()[:60]}:{os.getpid()}"

    def acquire(self, extra_tags: Optional[list] = None, known: Optional[dict] = None) -> None:
        """Take the lock; `extra_tags` are written to the endpoint in the same AddTags call. `known`: the
        endpoint's tags as the plan read them (else they are read first)."""
        before = revisions.list_tags(self.aws, self.arn) if known is None else known
        who = holders(before)
        if who:
            raise self._taken(who[0])
        value = f"{socket.gethostname()[:60]} {os.getpid()} {int(time.time())}"
        extra = list(extra_tags or [])
        try:
            self.aws.sagemaker.add_tags(ResourceArn=self.arn, Tags=[{"Key": revisions.T_LOCK, "Value": value},
                                                                    {"Key": self.key, "Value": value}] + extra)
            now = revisions.list_tags(self.aws, self.arn)
        except AuthError:
            return  # tagging denied: the endpoint status check is the only guard left
        who = holders(now, self.key)
        if who or now.get(self.key) != value:
            self._withdraw(extra, before, now)
            raise self._taken(who[0] if who else "another run")
        self.held = True
        # Left by runs that died (or went stale): removed with this run's own at release.
        self.stale = [k for k, v in now.items() if k.startswith(LOCK_KEYS) and k != self.key and not holder(v)]

    def _taken(self, who: str) -> PreflightFailed:
        return PreflightFailed(f"Another byoc run ({who}) is updating {self.endpoint}.",
                               f"Wait for it, or watch it with `byoc status {self.endpoint} --watch`.")

    def _withdraw(self, extra: list, before: dict, now: dict) -> None:
        """Undo this run's announcement: its lock key, `byoc:lock` back to the other run's value, and its
        start tags back to what the plan read (an attempt tag the other run wrote since is lost with ours;
        that run writes its outcome again when it ends). `byoc:original-config` stays: its value is the
        endpoint's original config whoever wrote it, and the other run's first update needs it."""
        other = next((v for k, v in now.items() if k.startswith(LOCK_KEYS) and k != self.key and holder(v)), None)
        restore = [{"Key": t["Key"], "Value": before[t["Key"]]} for t in extra if t["Key"] in before]
        drop = [self.key] + [t["Key"] for t in extra if t["Key"] not in before and t["Key"] != revisions.T_ORIGINAL]
        if other:
            restore.append({"Key": revisions.T_LOCK, "Value": other})
        try:
            if restore:
                self.aws.sagemaker.add_tags(ResourceArn=self.arn, Tags=restore)
            self.aws.sagemaker.delete_tags(ResourceArn=self.arn, TagKeys=drop)
        except (AuthError, AwsError):
            pass  # the other run's lock stands either way

    def release(self) -> None:
        if not self.held:
            return
        try:
            self.aws.sagemaker.delete_tags(ResourceArn=self.arn, TagKeys=[revisions.T_LOCK, self.key] + self.stale)
        except Exception:  # releasing must never mask the outcome; a stale lock is taken over later
            pass
        self.held = False
