"""One writer per dataset: an OS lock on ``DIR/.fastbp-lock`` held for a sweep's whole life.

The lock is ``flock(LOCK_EX)`` on a file that is never deleted. What counts is the kernel's lock,
not the file's presence: the kernel drops it when its holder exits in any way (``kill -9``
included), so a lock left by a killed sweep never blocks the next one. The holder writes who it
is into the file (pid, host, since, command) only so that a refused sweep can say who holds it,
and empties it again on release, so a file that names someone names a live holder (a killed one
cannot empty it: readers then check that the pid still exists).

The name begins with "." so that pyarrow, pandas, Polars and DuckDB (and fastbp's own "other
files" check) skip it when they read or inspect the directory.

Limits:
- flock belongs to an open file description: a second ``lock_dataset`` on the same directory in
  the same process is refused like any other. A child made by ``fork`` shares the description
  and keeps the lock alive while it runs; exec'd children do not (the descriptor is not inherited).
- On NFS, Linux (since 2.6.12) emulates flock with a POSIX byte-range lock on the whole file,
  held by the server's lock manager, so it does exclude other clients; it then also conflicts
  with fcntl locks other programs take on the file. A client that dies without unlocking is freed
  when the server's lease on it expires (NFSv4, ~90 s), not at once. A mount with
  ``local_lock=flock`` (or ``all``) only excludes processes of the same client.
- Object stores have no lock at all (``no_lock_possible``); there a shard is trusted only through
  its spec's fingerprint. Windows is not a target (fcntl); ``import fastbp`` does not import this.
"""

import contextlib
import datetime
import fcntl
import json
import os
import shlex
import socket
import sys
import time

from fastbp.errors import DatasetError

LOCK_NAME = ".fastbp-lock"

# A refused sweep reads the holder's record; the holder may be between its truncate and its write
# (a few microseconds), so the read is retried briefly before the record is called unavailable.
_READ_PAUSES = (0.01, 0.02, 0.05, 0.1, 0.2)


class DatasetBusy(DatasetError):
    """Another open lock holds the dataset; ``holder`` is what it wrote ({} if unreadable)."""

    def __init__(self, field, value, holder):
        self.holder = holder
        super().__init__(
            field,
            value,
            f"a dataset no other sweep is writing ({describe(holder)}; "
            "pass --wait / wait=True to wait for it, or stop that sweep)",
        )

    def __reduce__(self):  # picklable despite the three-argument constructor
        return type(self), (self.field, self.value, self.holder)


def describe(holder):
    """'held by pid … on host … since …: command' on one line, or 'details unavailable'."""
    if not holder:
        return "held by another process (details unavailable)"
    command = " ".join(holder["command"].split())  # one line, whatever the argv held
    if len(command) > 200:
        command = command[:197] + "..."
    return f"held by pid {holder['pid']} on host {holder['host']} since {holder['since']}: {command}"


class DatasetLock:
    """The held lock. A context manager; ``release()`` may be called any number of times.

    Keep a reference for as long as the dataset is written: the lock ends with ``release()``, the
    ``with`` block or the process, never silently when the object is dropped.
    """

    def __init__(self, directory, path, fd, holder):
        self.directory, self.path, self.holder = directory, path, holder
        self._fd = fd

    @property
    def held(self):
        return self._fd is not None

    def release(self):
        fd, self._fd = self._fd, None
        if fd is not None:
            # Emptied before the unlock: a moment later the next holder may have written its own.
            with contextlib.suppress(OSError):  # releasing matters more than the record
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.release()


def lock_dataset(directory, *, field="out", wait=False, on_wait=None, command=None):
    """Lock ``directory`` (a local directory that exists) for one writer; returns a ``DatasetLock``.

    Held elsewhere: ``wait=False`` raises ``DatasetBusy`` at once; ``wait=True`` calls
    ``on_wait(holder)`` once, then blocks until the holder lets go (Ctrl-C interrupts the wait).
    ``command`` is what the record names (default: this process's command line).
    """
    shown = os.fspath(directory)
    path = os.path.join(shown, LOCK_NAME)
    told = False  # on_wait is called once, even if a replaced file makes us wait again
    while True:
        fd = _open(path, field, shown)
        try:
            if not _try_lock(fd, field, shown):
                holder = _read_holder(fd)
                if not wait:
                    raise DatasetBusy(field, shown, holder)
                if on_wait is not None and not told:
                    on_wait(holder)
                told = True
                fcntl.flock(fd, fcntl.LOCK_EX)  # blocks; SIGINT raises KeyboardInterrupt out of it
            if _same_file(fd, path):
                holder = _record(command)
                data = json.dumps(holder).encode()
                os.ftruncate(fd, 0)  # never before holding the lock: a loser leaves the record alone
                os.pwrite(fd, data, 0)
                os.fsync(fd)
                return DatasetLock(shown, path, fd, holder)
        except BaseException:
            os.close(fd)
            raise
        # The file was deleted or replaced by hand between open and lock: the lock we hold is on
        # an inode nobody else will open, so take the one that is there now.
        os.close(fd)


def no_lock_possible(filesystem):
    """True where ``lock_dataset`` cannot work: anything but the local filesystem.

    Object stores (s3, gcs, abfs …) have no locks at all; HDFS, memory, sub-tree and other remote
    filesystems have no local path to lock either. ``filesystem`` is pyarrow's or fsspec's.
    """
    type_name = getattr(filesystem, "type_name", None)  # pyarrow
    if type_name is not None:
        return type_name not in ("local", "py::fsspec+('file', 'local')", "py::fsspec+file")
    protocol = getattr(filesystem, "protocol", None)  # fsspec
    protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol or ())
    return not set(protocols) & {"file", "local"}


def _open(path, field, shown):
    try:
        # O_RDWR without O_TRUNC: a sweep that loses must not wipe the winner's record.
        return os.open(path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
    except OSError as exc:
        raise DatasetError(
            field, shown, f"a writable directory (cannot open {path}: {exc.strerror})"
        ) from None


def _try_lock(fd, field, shown):
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:  # EWOULDBLOCK: held
        return False
    except OSError as exc:  # ENOLCK, EOPNOTSUPP …: a filesystem (some FUSE mounts) without locks
        raise DatasetError(
            field, shown, f"a directory on a filesystem with locks (flock: {exc.strerror})"
        ) from None


def _same_file(fd, path):
    try:
        here, there = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _record(command):
    if command is None:
        program = os.path.basename(sys.argv[0]) if sys.argv and sys.argv[0] else "python"
        if program == "__main__.py":  # python -m package
            program = "python -m " + os.path.basename(os.path.dirname(sys.argv[0]))
        command = " ".join([program, shlex.join(sys.argv[1:])]).strip()
    since = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return {"pid": os.getpid(), "host": socket.gethostname(), "since": since, "command": command}


def _read_holder(fd):
    for pause in _READ_PAUSES:
        holder = _parse(os.pread(fd, 1 << 16, 0))
        if holder and not _stale(holder):
            return holder
        time.sleep(pause)
    return {}


def _parse(data):
    try:
        holder = json.loads(data.decode())
    except (UnicodeDecodeError, ValueError):
        return {}
    types = {"pid": int, "host": str, "since": str, "command": str}
    if not isinstance(holder, dict) or any(not isinstance(holder.get(k), t) for k, t in types.items()):
        return {}
    if holder["pid"] <= 0:  # os.kill(0 or -n, 0) would ask about a process group
        return {}
    return {k: holder[k] for k in types}


def _stale(holder):
    """A record naming a process of this host that no longer exists: left by an earlier holder,
    read before the present one (which has only just got the lock) wrote its own."""
    if holder["host"] != socket.gethostname():
        return False
    try:
        os.kill(holder["pid"], 0)
    except (ProcessLookupError, OverflowError):  # gone, or a pid this system cannot have
        return True
    except PermissionError:  # alive, another user's
        return False
    return False
