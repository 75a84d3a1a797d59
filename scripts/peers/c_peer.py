"""The C loop peer: builds c_loop.c with gcc into a temporary directory, loads it with ctypes.

Flags (as the issue defines the peer): ``-O3 -march=native -ffast-math -fopenmp`` so that
the inner loop over a block of runs is vectorised and calls glibc's vector exp (libmvec,
``_ZGV*_exp`` / ``_ZGV*_expf``).  The time reported is measured inside the C function
(omp_get_wtime around the parallel loop, thread team started before the clock).
"""

from __future__ import annotations

import atexit
import ctypes
import os
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
from benchkit.problem import Problem

from . import PeerResult, PeerUnavailable

SOURCE = Path(__file__).with_name("c_loop.c")
FLAGS = ("-O3", "-march=native", "-ffast-math", "-fopenmp")

_lib: CLoop | None = None
_tmpdirs: list = []


def _cleanup():
    for d in _tmpdirs:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


class CLoop:
    """A built and loaded c_loop.c."""

    def __init__(self, path: Path, cmd: list):
        self.path = path
        self.cmd = cmd
        lib = ctypes.CDLL(str(path))
        self.lib = lib
        lib.bp_build_info.restype = ctypes.c_char_p
        for suffix, dt in (("f64", np.float64), ("f32", np.float32)):
            f = getattr(lib, f"bp_train_{suffix}")
            arr = np.ctypeslib.ndpointer(dtype=dt, flags="C_CONTIGUOUS")
            f.argtypes = [arr, arr, arr, arr, ctypes.c_long, ctypes.c_long, arr, ctypes.c_int]
            f.restype = ctypes.c_double

    @property
    def build_info(self) -> str:
        return self.lib.bp_build_info().decode()

    def vector_exp_symbols(self) -> dict:
        """{symbol: count} of libmvec calls (``_ZGV*exp*``) in the built library (objdump -d)."""
        objdump = shutil.which("objdump")
        if objdump is None:
            return {}
        out = subprocess.run(
            [objdump, "-d", str(self.path)], capture_output=True, text=True, check=False
        ).stdout
        syms: dict = {}
        for line in out.splitlines():
            if "call" not in line:
                continue
            m = re.search(r"<(_ZGV\w+?)(@plt)?>", line)
            if m:
                syms[m.group(1)] = syms.get(m.group(1), 0) + 1
        return syms

    def train(self, problem: Problem, threads: int | None = None) -> PeerResult:
        dt = problem.dtype
        if dt == np.float64:
            f = self.lib.bp_train_f64
        elif dt == np.float32:
            f = self.lib.bp_train_f32
        else:
            raise ValueError(f"unsupported dtype {dt}")
        R = problem.runs
        w_out = np.empty((8, R), dtype=dt)
        loss = np.empty(R, dtype=dt)
        io = np.array(problem.inputs + problem.targets, dtype=dt)
        seconds = f(problem.w_init, problem.lr, w_out, loss, R, problem.steps, io, int(threads or 0))
        return PeerResult(w_out, loss, seconds, R, problem.steps)


def build() -> CLoop:
    """Compile c_loop.c (once per process).  Raises PeerUnavailable."""
    global _lib
    if _lib is not None:
        return _lib
    cc = os.environ.get("CC") or shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise PeerUnavailable("no C compiler (gcc/cc) on PATH")
    tmp = tempfile.mkdtemp(prefix="fastbp_cloop_")
    _tmpdirs.append(tmp)
    out = Path(tmp) / "libc_loop.so"
    cmd = [cc, *FLAGS, "-shared", "-fPIC", str(SOURCE), "-o", str(out), "-lm"]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise PeerUnavailable(f"compiler failed to start: {exc}") from exc
    if proc.returncode != 0:
        msg = (proc.stderr or proc.stdout).strip().splitlines()
        raise PeerUnavailable(f"compile failed: {' '.join(cmd)}: {msg[-1] if msg else '?'}")
    try:
        _lib = CLoop(out, cmd)
    except OSError as exc:
        raise PeerUnavailable(f"cannot load the built library: {exc}") from exc
    return _lib


def run(problem: Problem, threads: int | None = None) -> PeerResult:
    """Train `problem` with the C loop.  threads None/0 = OpenMP's default (all cores)."""
    return build().train(problem, threads)
