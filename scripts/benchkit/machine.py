"""What the timings ran on: CPU model, cores, load average, versions."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
from pathlib import Path


def cpu_model() -> str:
    """The first 'model name' of /proc/cpuinfo and its SIMD flags, e.g. 'AMD EPYC (avx512f, avx2, fma)'."""
    model, flags = "?", set()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, val = line.partition(":")
            key = key.strip()
            if key == "model name" and model == "?":
                model = val.strip()
            elif key == "flags" and not flags:
                flags = set(val.split())
    except OSError:
        pass
    simd = [f for f in ("avx512f", "avx2", "fma") if f in flags]
    return f"{model} ({', '.join(simd) or 'no avx'})"


def available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def load_note() -> str:
    try:
        l1, l5, _ = os.getloadavg()
    except OSError:
        return "?"
    note = f"load average {l1:.2f} (1 min), {l5:.2f} (5 min)"
    if l1 > 0.3 * available_cores():
        note += " -- other work is running: timings will be noisy"
    return note


def header(args) -> None:
    """The run's first lines: machine, versions, settings."""
    import numba
    import numpy as np

    print("fastbp benchmark")
    print(f"  cpu      : {cpu_model()}, {available_cores()} cores available")
    print(f"  python   : {platform.python_version()}  numpy {np.__version__}  numba {numba.__version__}")
    try:
        import fastbp

        ver = getattr(fastbp, "__version__", "?")
        print(f"  fastbp   : {ver} ({Path(fastbp.__file__).parent})")
    except Exception as exc:  # noqa: BLE001
        print(f"  fastbp   : not importable ({exc.__class__.__name__}: {exc})")
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc:
        v = subprocess.run([cc, "--version"], capture_output=True, text=True).stdout
        print(f"  C        : {v.splitlines()[0] if v else cc}")
    print(
        f"  threads  : {args.threads} (--threads; fastbp kernel, C loop, torch, the command's "
        f"NUMBA_NUM_THREADS)"
    )
    print(
        f"  peers    : {', '.join(args.peers) or 'none'}; repeats: best of {args.repeat}"
        f"{'; QUICK sizes' if args.quick else ''}"
    )
    print(f"  load     : {load_note()}")
    for var in ("OPENBLAS_CORETYPE", "NUMBA_NUM_THREADS", "OMP_NUM_THREADS"):
        if os.environ.get(var):
            print(f"  env      : {var}={os.environ[var]}")
    sys.stdout.flush()
