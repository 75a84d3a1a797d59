"""The whole ``fastbp`` command timed as a subprocess: start-up, spec, kernels, Parquet, all of it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from benchkit.machine import available_cores


def fastbp_command() -> list[str]:
    """The installed ``fastbp`` entry point next to this Python, else the CLI through ``-c``."""
    exe = Path(sys.executable).with_name("fastbp")
    if exe.exists():
        return [str(exe)]
    return [sys.executable, "-c", "import sys; from fastbp.cli import main; sys.exit(main(sys.argv[1:]))"]


def spec_toml(steps: int, n_lr: int, count: int, dtype: str, record_every: int) -> str:
    """A sweep spec of make_problem's shape: n_lr lrs logspace(-2, 1) x `count` uniform(-1, 1) inits."""
    return (
        f"steps = {steps}\n"
        f"lr = {{logspace = [-2, 1], num = {n_lr}}}\n"
        f'dtype = "{dtype}"\n'
        "seed = 0\n"
        f"record_every = {record_every}\n"
        "[[init]]\n"
        'kind = "uniform"\n'
        "low = -1.0\n"
        "high = 1.0\n"
        f"count = {count}\n"
    )


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


class CommandRunner:
    """Runs `fastbp ...` (or `cmd ...`) as a subprocess with NUMBA_NUM_THREADS = threads.

    `env` adds to the environment (e.g. PYTHONPATH for another tree); `quiet` passes the sweep
    ``--quiet`` when the command knows the option.
    """

    def __init__(
        self, threads: int, workdir: Path, cmd: list[str] | None = None, env=None, quiet: bool = False
    ):
        self.cmd = cmd or fastbp_command()
        self.env = dict(os.environ, NUMBA_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads))
        self.env.update(env or {})
        self.workdir = workdir
        self._n = 0
        # the literal command `fastbp sweep SPEC --out DIR`; --threads added only when the
        # bench runs on fewer threads than the machine has, each option only if the CLI knows it
        self.sweep_extra: list[str] = []
        if threads != available_cores() or quiet:
            try:
                helptext = subprocess.run(
                    self.cmd + ["sweep", "--help"], capture_output=True, text=True, env=self.env, timeout=120
                ).stdout
            except Exception:  # noqa: BLE001
                helptext = ""
            if threads != available_cores() and "--threads" in helptext:
                self.sweep_extra += ["--threads", str(threads)]
            if quiet and "--quiet" in helptext:
                self.sweep_extra.append("--quiet")

    def run(self, args: list[str], timeout: float = 3600) -> tuple[float, subprocess.CompletedProcess]:
        t0 = time.perf_counter()
        proc = subprocess.run(
            self.cmd + args,
            capture_output=True,
            text=True,
            env=self.env,
            cwd=self.workdir,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            tail = (proc.stderr or proc.stdout).strip().splitlines()
            raise RuntimeError(
                f"`fastbp {' '.join(args[:1])}` exit {proc.returncode}: "
                f"{tail[-1][:160] if tail else 'no output'}"
            )
        return wall, proc

    def fresh(self, stem: str) -> Path:
        self._n += 1
        return self.workdir / f"{stem}_{self._n}"

    def sweep(self, toml: str, stem: str, warm: bool = True, repeat: int = 1) -> tuple[float, Path]:
        """Best wall time of `repeat` runs of `fastbp sweep SPEC --out DIR` (after one warm-up
        run if `warm`), and the dataset of the best run."""
        spec = self.workdir / f"{stem}.toml"
        spec.write_text(toml)
        if warm:
            wdir = self.fresh(stem + "_warm")
            self.run(["sweep", str(spec), "--out", str(wdir), *self.sweep_extra])
            shutil.rmtree(wdir, ignore_errors=True)
        best: tuple[float, Path] | None = None
        for _ in range(max(1, repeat)):
            out = self.fresh(stem)
            wall, _ = self.run(["sweep", str(spec), "--out", str(out), *self.sweep_extra])
            if best is None or wall < best[0]:
                if best is not None:
                    shutil.rmtree(best[1], ignore_errors=True)
                best = (wall, out)
            else:
                shutil.rmtree(out, ignore_errors=True)
        return best
