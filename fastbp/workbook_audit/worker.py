"""Files audited in a child process that cannot outlive its time or outgrow its memory.

The budgets of limits.py bound what a file can ask of the reader; this bounds what is left (a
part openpyxl reads slowly, a check that a strange table makes long) from outside. One child is
forked (everything already imported) and audits the files one after the other, answering through
a pipe; its address space is capped at its size when forked plus ``memory_mb``, and each file has
``timeout`` seconds of wall-clock time: past it the child is killed, the file is unreadable, and
the next file gets a new child. One child for many files keeps the caches warm (the references
and headers a class's workbooks share) and costs one fork, not one per file. Where there is no
fork (Windows), or with FASTBP_DEBUG set (so that a traceback shows), the work runs in this
process, bounded by the budgets alone.
"""

import os
import pickle
import select
import signal
import struct
import time

from fastbp.errors import SpecError
from fastbp.workbook_audit.limits import Unreadable

_MAX_ANSWER = 64_000_000  # bytes of rows a child may send back (its texts are already cut)
_LENGTH = struct.Struct("<Q")


class Bounded:
    """``call(arg)`` runs ``work(arg)`` in the child, within ``limits.timeout`` and ``limits.memory_mb``.

    Returns its value; raises Unreadable (over a budget, or past the time) or RuntimeError with the
    child's failure in one line. Use as a context manager, so the child is ended.
    """

    def __init__(self, work, limits):
        self.work, self.limits = work, limits
        self.inline = not hasattr(os, "fork") or bool(os.environ.get("FASTBP_DEBUG"))
        self.pid = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self.pid is not None:
            os.close(self.requests)
            os.close(self.answers)
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self.pid = None

    def call(self, arg):
        if self.inline:
            return self.work(arg)
        if self.pid is None:
            self._start()
        deadline = time.monotonic() + self.limits.timeout
        try:
            _send(self.requests, arg)
            outcome, value, retire = _receive(self.answers, deadline, self.limits.timeout)
        except BaseException:  # past the time, a child gone, an interrupt: this child is done
            self.close()
            raise
        if outcome == "rows":
            if retire:
                self.close()
            return value
        self.close()  # after a failure or a MemoryError the child's state is not to be trusted
        if outcome == "unreadable":
            raise Unreadable(value)
        if outcome == "refused":
            raise SpecError(*value)
        raise RuntimeError(value)

    def _start(self):
        request_read, request_write = os.pipe()
        answer_read, answer_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # the child: never returns
            os.close(request_write)
            os.close(answer_read)
            _child(self.work, self.limits, request_read, answer_write)
        os.close(request_read)
        os.close(answer_write)
        self.pid, self.requests, self.answers = pid, request_write, answer_read


def _send(fd, value):
    data = pickle.dumps(value)
    view = memoryview(_LENGTH.pack(len(data)) + data)
    while view:
        view = view[os.write(fd, view) :]


def _receive(fd, deadline, timeout, limit=_MAX_ANSWER):
    """One length-prefixed pickled answer, or Unreadable when the deadline passes first."""
    data, size = bytearray(), None
    while size is None or len(data) < size + _LENGTH.size:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            raise Unreadable(f"took longer than {timeout:g} s (budget timeout): not audited")
        chunk = os.read(fd, 1 << 16)
        if not chunk:
            raise RuntimeError("the audit's process stopped without an answer")
        data += chunk
        if size is None and len(data) >= _LENGTH.size:
            size = _LENGTH.unpack_from(data)[0]
            if size > limit:
                raise Unreadable(f"the audit's answer passed {limit:,} bytes")
    return pickle.loads(bytes(data[_LENGTH.size :]))


def _child(work, limits, requests, answers):
    code = 0
    try:
        start = _size()
        _cap_memory(start, limits.memory_mb)
        while True:
            header = _read_exactly(requests, _LENGTH.size)
            if not header:
                break
            arg = pickle.loads(_read_exactly(requests, _LENGTH.unpack(header)[0]))
            try:
                # A child grown by half its budget (memory a big file left behind) retires after this
                # answer, so that the next file has its whole budget.
                rows = work(arg)
                answer = ("rows", rows, _size() > start + limits.memory_mb * 5e5)
            except Unreadable as exc:
                answer = ("unreadable", str(exc), True)
            except SpecError as exc:  # bad usage (openpyxl missing): the caller's refusal, not the file's
                answer = ("refused", (exc.field, exc.value, exc.allowed), True)
            except MemoryError:
                answer = (
                    "unreadable",
                    f"needed more than {limits.memory_mb:g} MB of memory (budget memory_mb)",
                    True,
                )
            except Exception as exc:
                answer = ("failed", f"{type(exc).__name__}: {exc}", True)
            _send(answers, answer)
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _read_exactly(fd, n):
    data = bytearray()
    while len(data) < n:
        chunk = os.read(fd, n - len(data))
        if not chunk:
            return bytes(data)
        data += chunk
    return bytes(data)


def _size():
    """This process's address space in bytes (0 where /proc does not say)."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError):
        return 0


def _cap_memory(size, megabytes):
    try:
        import resource
    except ImportError:
        return
    if not size:
        return
    cap = size + int(megabytes * 1e6)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    for limit in (soft, hard):
        if limit != resource.RLIM_INFINITY:
            cap = min(cap, limit)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
