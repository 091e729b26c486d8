"""One writer per dataset folder: a lease lock that names its holder.

Two jobs writing one output folder would both finish while ``rainset.json`` keeps one job's
sources and ``review.json`` the other's decisions. :class:`FolderLock` stops the second: the
holder creates ``<folder>/.rainset.lock`` (``O_EXCL``, which shared file systems honour too)
holding its pid, host and start time, and keeps the lease alive by touching the file every
:data:`REFRESH_S` seconds from a daemon thread. Another writer is refused with the holder named,
unless the lock is stale:

- its lease expired (not touched for :data:`LEASE_S` seconds: the holder died on another
  machine, or hangs), or
- it was taken on this host by a process that no longer exists (``kill -9``).

A stale lock is taken over (set aside by an atomic rename, so of two processes taking over at
once only one wins) and what the dead holder wrote stays: the dataset writer resumes it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import threading
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

from rainset.errors import RainsetError

logger = logging.getLogger(__name__)

#: Name of the lock file inside the folder it protects.
LOCK_NAME = ".rainset.lock"
#: Seconds without a refresh after which a lease is expired (shared storage: another host).
LEASE_S = 30.0
#: How often the holder refreshes its lease (seconds).
REFRESH_S = 5.0


class LockedError(RainsetError):
    """Another live process holds the folder's lock; ``holder`` is what its lock file says."""

    def __init__(self, message: str, holder: dict) -> None:
        super().__init__(message)
        self.holder = holder


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    except (OSError, OverflowError):
        return False
    return True


def read_lock(folder: str | os.PathLike) -> dict | None:
    """The holder recorded in ``folder``'s lock (pid, host, started, lease_s, token) with its
    ``age_s`` (seconds since the last refresh), or None when the folder is not locked."""
    path = Path(folder) / LOCK_NAME
    try:
        text = path.read_text(encoding="utf-8")
        age = time.time() - path.stat().st_mtime
    except (FileNotFoundError, NotADirectoryError):
        return None
    try:
        holder = json.loads(text)
        if not isinstance(holder, dict):
            raise ValueError
    except ValueError:  # being written this instant, or damaged: judged by its age alone
        holder = {}
    holder["age_s"] = max(0.0, age)
    return holder


def stale_reason(holder: dict) -> str | None:
    """Why a lock (as :func:`read_lock` returns it) no longer holds, or None while it does."""
    lease = holder.get("lease_s") if isinstance(holder.get("lease_s"), (int, float)) else LEASE_S
    if holder["age_s"] > lease:
        return f"its lease expired {holder['age_s'] - lease:.0f} s ago"
    pid = holder.get("pid")
    if holder.get("host") == socket.gethostname() and isinstance(pid, int) and not _pid_alive(pid):
        return f"process {pid} on this host has ended"
    return None


def describe(holder: dict) -> str:
    """The holder in words: ``process 123 on host-a (started 2026-12-01T22:00:00+00:00)``."""
    return (
        f"process {holder.get('pid', '?')} on {holder.get('host', '?')} "
        f"(started {holder.get('started', '?')})"
    )


class FolderLock:
    """The lease lock of one folder (see the module docstring).

    Parameters
    ----------
    folder : the folder to protect (created by :meth:`acquire` when missing; removed again by
        :meth:`release` when it was created for the lock and is still empty).
    what : what the folder is, for the message (``"the dataset"``).
    lease_s, refresh_s : lease length and refresh period in seconds.
    """

    def __init__(
        self,
        folder: str | os.PathLike,
        *,
        what: str = "the dataset",
        lease_s: float = LEASE_S,
        refresh_s: float = REFRESH_S,
    ) -> None:
        if not refresh_s < lease_s:
            raise ValueError(f"refresh_s must be < lease_s, got {refresh_s} and {lease_s}")
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self.what = what
        self.lease_s = float(lease_s)
        self.refresh_s = float(refresh_s)
        self._token: str | None = None
        self._created_folder = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def held(self) -> bool:
        return self._token is not None

    def check(self) -> None:
        """Raise :class:`LockedError` when a live holder other than this object has the lock."""
        if self.held:
            return
        holder = read_lock(self.folder)
        if holder is not None and stale_reason(holder) is None:
            raise self._locked(holder)

    def _locked(self, holder: dict) -> LockedError:
        return LockedError(
            f"{self.folder} is being written by {describe(holder)}; wait for it to finish, or "
            f"write elsewhere (a stale lock, whose lease of {holder.get('lease_s', self.lease_s):g} s "
            f"expired, is taken over; the lock file is {self.path}).",
            holder,
        )

    def acquire(self) -> None:
        """Take the lock, taking over a stale one; idempotent. Raises :class:`LockedError`."""
        if self.held:
            return
        if not self.folder.exists():
            self.folder.mkdir(parents=True, exist_ok=True)
            self._created_folder = True
        token = uuid.uuid4().hex
        body = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "lease_s": self.lease_s,
            "token": token,
        }
        data = (json.dumps(body) + "\n").encode("utf-8")
        for _ in range(5):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o666)  # less the umask
            except FileExistsError:
                holder = read_lock(self.folder)
                if holder is None:
                    continue  # released meanwhile
                why = stale_reason(holder)
                if why is None:
                    self._forget_folder()
                    raise self._locked(holder) from None
                self._take_over(holder, why)
                continue
            try:
                os.write(fd, data)
                os.fsync(fd)
            finally:
                os.close(fd)
            self._token = token
            self._stop.clear()
            self._thread = threading.Thread(
                target=self._refresh, name="rainset-lock-lease", daemon=True
            )
            self._thread.start()
            return
        holder = read_lock(self.folder) or {}
        raise self._locked(holder)

    def _take_over(self, holder: dict, why: str) -> None:
        aside = self.folder / f"{LOCK_NAME}.stale-{uuid.uuid4().hex[:8]}"
        try:
            os.rename(self.path, aside)
        except FileNotFoundError:
            return  # another process took it over first
        try:
            moved = json.loads(aside.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            moved = {}
        if holder.get("token") is not None and moved.get("token") != holder.get("token"):
            # Not the lock judged stale: a new holder's, set aside by mistake. Put it back.
            with contextlib.suppress(OSError):
                os.link(aside, self.path)
        else:
            logger.warning(
                "%s: taking over the lock of %s: %s; what it wrote is kept",
                self.folder, describe(holder), why,
            )  # fmt: skip
        with contextlib.suppress(OSError):
            aside.unlink()

    def _refresh(self) -> None:
        while not self._stop.wait(self.refresh_s):
            try:
                os.utime(self.path)
            except OSError as exc:  # the folder was removed, or storage went away
                logger.warning("%s: cannot refresh the lock (%s)", self.folder, exc)

    def release(self) -> None:
        """Give the lock up (only if still ours); idempotent."""
        if not self.held:
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        holder = read_lock(self.folder)
        if holder is not None and holder.get("token") == self._token:
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()
        self._token = None
        self._forget_folder()

    def _forget_folder(self) -> None:
        if self._created_folder:
            self._created_folder = False
            with contextlib.suppress(OSError):
                self.folder.rmdir()  # only when empty: nothing was written

    def __enter__(self) -> FolderLock:
        self.acquire()
        return self

    def __exit__(self, *exc) -> None:
        self.release()
