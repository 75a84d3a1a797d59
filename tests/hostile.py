"""Running the ``fastbp`` command on hostile input as a user's machine would: in a subprocess,
under a memory cap (``resource.setrlimit``) and a wall-clock timeout, so that a crash, an
allocation sized by a claim or a hang fails the test instead of the machine."""

import os
import resource
import signal
import subprocess
import sys
from pathlib import Path

EXE = Path(sys.executable).parent / "fastbp"

#: Address space a command may take: well above what fastbp needs on small input (Numba,
#: pyarrow and matplotlib loaded: about 0.5 GiB), far below what the hostile inputs used to ask.
MEMORY_CAP = 2**30

# One thread each: every thread reserves address space (its stack, a malloc arena), which
# under an address-space cap would fail for reasons that have nothing to do with the input.
_ONE_THREAD = {
    "NUMBA_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MALLOC_ARENA_MAX": "2",
}


def _cap_memory(limit):
    def apply():
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
        # Ctrl-C as from a terminal: pytest-xdist's workers ignore SIGINT, an ignored signal stays
        # ignored across exec, and Python then never raises KeyboardInterrupt.
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    return apply


def run_capped(argv, timeout=60, memory=MEMORY_CAP):
    """``fastbp ARGV`` under the memory cap; a ``subprocess.CompletedProcess`` (text)."""
    return subprocess.run(
        [str(EXE), *map(str, argv)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=_cap_memory(memory),
        env={**os.environ, **_ONE_THREAD},
    )


def start_capped(argv, memory=MEMORY_CAP):
    """``fastbp ARGV`` started under the memory cap, for a test that signals it."""
    return subprocess.Popen(
        [str(EXE), *map(str, argv)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_cap_memory(memory),
        # SIGABRT then prints every thread's Python stack: ``communicate_or_show`` sends it to a
        # command that does not stop.
        env={**os.environ, **_ONE_THREAD, "PYTHONFAULTHANDLER": "1"},
    )


def communicate_or_show(proc, timeout):
    """``proc.communicate(timeout)``'s stderr; if the command is still running then, an
    AssertionError showing where it was (its stacks, from Python's faulthandler)."""
    try:
        return proc.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        stacks = proc.communicate(timeout=30)[1]
        raise AssertionError(f"still running after {timeout} s; its stacks:\n{stacks[-4000:]}") from None


def one_line(text):
    """The one line of ``text`` (a refusal's stderr), or an AssertionError showing all of it."""
    lines = text.strip().splitlines()
    assert len(lines) == 1, f"expected one line, got {len(lines)}: {text[-2000:]!r}"
    return lines[0]
