"""One file's audit in a child process that cannot outlive its time or outgrow its memory.

The budgets of limits.py bound what a file can ask of the reader; this bounds what is left (a
part openpyxl reads slowly, a check that a strange table makes long) from outside: the child is
forked (a few milliseconds, everything already imported), its address space capped at its size
when forked plus ``memory_mb``, and killed when ``timeout`` seconds have passed. Its rows come
back through a pipe. Where there is no fork (Windows), or with FASTBP_DEBUG set (so that a
traceback shows), the audit runs in this process, bounded by the budgets alone.
"""

import os
import pickle
import select
import signal
import sys
import time

from fastbp.workbook_audit.limits import Unreadable

_MAX_ANSWER = 64_000_000  # bytes of rows a child may send back (its texts are already cut)


def bounded(work, limits):
    """``work()`` (returning a picklable value) within ``limits.timeout`` and ``limits.memory_mb``.

    Returns its value; raises Unreadable (over a budget, or past the time) or RuntimeError with the
    child's failure in one line.
    """
    if not hasattr(os, "fork") or os.environ.get("FASTBP_DEBUG"):
        return work()
    sys.stdout.flush()
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        os.close(read_end)
        _child(work, limits, write_end)
    os.close(write_end)
    answer, finished = bytearray(), False
    try:
        deadline = time.monotonic() + limits.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            if not select.select([read_end], [], [], left)[0]:
                continue
            chunk = os.read(read_end, 1 << 16)
            if not chunk:
                finished = True
                break
            answer += chunk
            if len(answer) > _MAX_ANSWER:
                break
    finally:
        os.close(read_end)
        if not finished:
            os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
    if not finished:
        if len(answer) > _MAX_ANSWER:
            raise Unreadable(f"the audit's answer passed {_MAX_ANSWER:,} bytes")
        raise Unreadable(f"took longer than {limits.timeout:g} s (budget timeout): not audited")
    if not answer:
        how = f"signal {-os.waitstatus_to_exitcode(status)}" if os.WIFSIGNALED(status) else "no answer"
        raise RuntimeError(f"the audit's process stopped ({how})")
    outcome, value = pickle.loads(bytes(answer))
    if outcome == "rows":
        return value
    if outcome == "unreadable":
        raise Unreadable(value)
    raise RuntimeError(value)


def _child(work, limits, write_end):
    code = 0
    try:
        _cap_memory(limits.memory_mb)
        try:
            answer = ("rows", work())
        except Unreadable as exc:
            answer = ("unreadable", str(exc))
        except MemoryError:
            answer = ("unreadable", f"needed more than {limits.memory_mb:g} MB of memory (budget memory_mb)")
        except Exception as exc:
            answer = ("failed", f"{type(exc).__name__}: {exc}")
        data = pickle.dumps(answer)
        view = memoryview(data)
        while view:
            view = view[os.write(write_end, view) :]
    except BaseException:
        code = 1
    finally:
        os._exit(code)


def _cap_memory(megabytes):
    try:
        import resource

        with open("/proc/self/statm") as handle:
            size = int(handle.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    except (ImportError, OSError, ValueError):
        return
    cap = size + int(megabytes * 1e6)
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    if soft != resource.RLIM_INFINITY:
        cap = min(cap, soft)
    if hard != resource.RLIM_INFINITY:
        cap = min(cap, hard)
    resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
