"""A/B against another git revision, side by side in one run: ``bench.py --against REV``.

REV is checked out into a temporary ``git worktree`` and nothing is installed: each tree runs in
subprocesses of this same Python with ``PYTHONPATH=<tree>`` (so REV's Numba cache lives in its
worktree's ``__pycache__``). For W1 / W1-f32 both trees are timed on
(a) the kernel, warm, in a subprocess per tree and round (kernel_child.py: compile, warm up,
    then best of --repeat calls of ``fastbp.kernels.train`` on the same W1 problem), and
(b) the whole ``python -m fastbp sweep SPEC --out DIR --quiet`` command, warm cache, best of
    --repeat,
alternating --alternate times between the trees (the order flips every round, so a drift in the
machine's load hits both). Printed: each tree's best figure, and the speed ratio this/REV
(= REV's seconds / this tree's) of each round, median and min-max; for the command also its CPU
seconds (user + sys), which a busy machine disturbs less than the wall time. The worktree is
removed at the end.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from benchkit.command import CommandRunner, spec_toml
from benchkit.machine import load_note
from benchkit.problem import Sizes
from benchkit.report import fmt_rate
from benchkit.w1 import w1_problem

ROOT = Path(__file__).resolve().parents[2]  # this tree: scripts/benchkit/against.py
KERNEL_CHILD = Path(__file__).with_name("kernel_child.py")
# the same Python for both trees; -P: nothing but PYTHONPATH prepended to sys.path (not the cwd)
PYTHON = [sys.executable, "-P"]


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {(done.stderr or done.stdout).strip()}")
    return done.stdout.strip()


@dataclass
class Tree:
    label: str  # "this" or REV as given
    root: Path  # the directory put on PYTHONPATH: it holds fastbp/
    about: str  # commit and subject, for the header
    runner: CommandRunner | None = None
    kernel: list = field(default_factory=list)  # best seconds per round
    command: list = field(default_factory=list)
    command_cpu: list = field(default_factory=list)  # user + sys seconds per sweep, mean per round
    digests: set = field(default_factory=set)
    kernel_diagnostics: list = field(default_factory=list)  # this tree only: diagnostics = true
    command_diagnostics: list = field(default_factory=list)

    def env(self, threads: int) -> dict:
        return {
            "PYTHONPATH": str(self.root),
            "NUMBA_NUM_THREADS": str(threads),
            "OMP_NUM_THREADS": str(threads),
        }


def describe(repo: Path, rev: str) -> str:
    return git(repo, "log", "-1", "--format=%h %s", rev)[:72]


def add_worktree(repo: Path, rev: str, path: Path) -> None:
    sha = git(repo, "rev-parse", "--verify", f"{rev}^{{commit}}")
    git(repo, "worktree", "add", "--detach", str(path), sha)


def time_kernel_in(tree: Tree, job: dict, workdir: Path, threads: int) -> dict:
    """kernel_child.py inside `tree`: its JSON line."""
    done = subprocess.run(
        [*PYTHON, str(KERNEL_CHILD), json.dumps(job)],
        capture_output=True,
        text=True,
        cwd=workdir,
        env=dict(os.environ, **tree.env(threads)),
        stdin=subprocess.DEVNULL,
        timeout=3600,
    )
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()
        raise RuntimeError(f"kernel in {tree.label}: exit {done.returncode}: {tail[-1] if tail else '?'}")
    out = json.loads(done.stdout.strip().splitlines()[-1])
    if Path(out["package"]).resolve() != tree.root.resolve():
        raise RuntimeError(f"kernel in {tree.label} imported fastbp from {out['package']}, not {tree.root}")
    return out


def children_cpu() -> float:
    """User + system seconds of this process's finished subprocesses so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def final_losses(dataset: Path) -> np.ndarray:
    import pyarrow.parquet as pq

    tab = pq.read_table(str(dataset), columns=["run", "final_loss"])
    return tab.column("final_loss").to_numpy()[np.argsort(tab.column("run").to_numpy())]


def kernel_job(wl: str, prob, args, workdir: Path) -> dict:
    """kernel_child.py's argument: the problem saved as .npy, so both trees train the same runs."""
    paths = {name: workdir / f"{wl}_{name}.npy" for name in ("w_init", "lr")}
    np.save(paths["w_init"], prob.w_init)
    np.save(paths["lr"], prob.lr)
    return dict(
        {name: str(path) for name, path in paths.items()},
        inputs=list(prob.inputs),
        targets=list(prob.targets),
        steps=prob.steps,
        threads=args.threads,
        repeat=args.repeat,
    )


def same_datasets(trees: list[Tree], toml: str, stem: str) -> bool:
    """One untimed sweep per tree (it also fills the tree's Numba cache): same final losses, bit for bit?"""
    datasets = [tree.runner.sweep(toml, stem, warm=False)[1] for tree in trees]
    same = np.array_equal(*(final_losses(d) for d in datasets), equal_nan=True)
    for d in datasets:
        shutil.rmtree(d, ignore_errors=True)
    return bool(same)


def summarise(wl: str, trees: list[Tree], run_steps: int) -> dict:
    """Print each tree's best figure and the per-round speed ratios; return them for --json."""
    this, rev = trees
    result = {}
    print(f"\n== A/B {wl}: M run-steps/s, best of all rounds (seconds); speed this/{rev.label} per round")
    print(f"  {'':<22}{'this':>20}{rev.label:>20}   this/{rev.label}: median [min-max]")
    parts = (
        ("kernel", "kernel (in-process)"),
        ("command", "fastbp sweep (command)"),
        ("command_cpu", "  its CPU s (user+sys)"),
    )
    for part, name in parts:
        a, b = getattr(this, part), getattr(rev, part)
        ratios = [tb / ta for ta, tb in zip(a, b)]  # REV's seconds / this tree's: > 1, this is faster
        if part == "command_cpu":  # on a busy machine less noisy than the wall time, not a rate
            cells = [f"{min(s):.3f} s" for s in (a, b)]
        else:
            cells = [f"{fmt_rate(run_steps / min(s))} ({min(s):.4f} s)" for s in (a, b)]
        med = statistics.median(ratios)
        print(f"  {name:<22}{cells[0]:>20}{cells[1]:>20}   {med:.3f} [{min(ratios):.3f}-{max(ratios):.3f}]")
        result[part] = {
            "this_s": a,
            "rev_s": b,
            "ratio_median": med,
            "ratio_min": min(ratios),
            "ratio_max": max(ratios),
        }
    print(
        "  this tree with diagnostics = true (sharpness at the first and last step), speed on/off per round:"
    )
    for part, name in (("kernel", "kernel (in-process)"), ("command", "fastbp sweep (command)")):
        off, on = getattr(this, part), getattr(this, f"{part}_diagnostics")
        ratios = [t_off / t_on for t_off, t_on in zip(off, on)]  # < 1: diagnostics cost that much
        med = statistics.median(ratios)
        cell = f"{fmt_rate(run_steps / min(on))} ({min(on):.4f} s)"
        print(f"  {name:<22}{cell:>20}{'':>20}   {med:.3f} [{min(ratios):.3f}-{max(ratios):.3f}]")
        result[f"{part}_diagnostics"] = {"on_s": on, "off_s": off, "ratio_median": med}
    return result


def ab_workload(wl: str, trees: list[Tree], args, sizes: Sizes, workdir: Path) -> dict:
    """Both trees on one workload, `args.alternate` rounds; prints the rounds and the summary."""
    dtype = "float64" if wl == "W1" else "float32"
    prob = w1_problem(sizes, np.dtype(dtype))
    job = kernel_job(wl, prob, args, workdir)
    toml = spec_toml(prob.steps, sizes.w1_lrs, sizes.w1_inits, dtype, 0)
    print(
        f"\n[A/B {wl}] {prob.runs:,} runs ({sizes.w1_lrs} lrs x {sizes.w1_inits} inits) x {prob.steps:,} "
        f"steps, {dtype}, {args.threads} threads; {args.alternate} rounds, each best of {args.repeat}",
        flush=True,
    )
    same_dataset = same_datasets(trees, toml, f"ab_{wl}_warm")
    for tree in trees:
        tree.kernel, tree.command, tree.command_cpu, tree.digests = [], [], [], set()
        tree.kernel_diagnostics, tree.command_diagnostics = [], []
    this = trees[0]
    diagnosed_toml = "diagnostics = true\n" + toml  # a top-level key: before the [[init]] table
    shutil.rmtree(this.runner.sweep(diagnosed_toml, f"ab_{wl}_diagnostics", warm=False)[1])  # compile once
    for i in range(args.alternate):
        order = trees if i % 2 == 0 else trees[::-1]
        for tree in order:
            out = time_kernel_in(tree, job, workdir, args.threads)
            tree.kernel.append(min(out["seconds"]))
            tree.digests.add(out["final_loss_sha256"])
        out = time_kernel_in(this, dict(job, diagnostics=True), workdir, args.threads)
        this.kernel_diagnostics.append(min(out["seconds"]))
        this.digests.add(out["final_loss_sha256"])  # diagnostics leave the training's bits alone
        wall, out = this.runner.sweep(diagnosed_toml, f"ab_{wl}_diagnostics", warm=False, repeat=args.repeat)
        shutil.rmtree(out, ignore_errors=True)
        this.command_diagnostics.append(wall)
        for tree in order:
            cpu = children_cpu()
            wall, out = tree.runner.sweep(toml, f"ab_{wl}", warm=False, repeat=args.repeat)
            tree.command_cpu.append((children_cpu() - cpu) / args.repeat)
            shutil.rmtree(out, ignore_errors=True)
            tree.command.append(wall)
        print(
            f"  round {i + 1} ({' then '.join(t.label for t in order)}): kernel "
            + ", ".join(f"{t.label} {t.kernel[-1]:.4f} s" for t in trees)
            + "; command "
            + ", ".join(f"{t.label} {t.command[-1]:.3f} s" for t in trees),
            flush=True,
        )
    result = dict(workload=wl, runs=prob.runs, steps=prob.steps, dtype=dtype, threads=args.threads)
    result.update(summarise(wl, trees, prob.run_steps))
    digests = trees[0].digests | trees[1].digests
    same_kernel = None if None in digests else len(digests) == 1  # None: a train without final_loss
    verdict = {True: "identical", False: "DIFFER", None: "not compared"}
    print(
        f"  final losses: kernel bits {verdict[same_kernel]} in both trees; "
        f"sweep datasets' final_loss {verdict[same_dataset]}"
    )
    result.update(same_kernel_bits=same_kernel, same_dataset_bits=same_dataset)
    return result


def run_against(args, sizes: Sizes, workloads: list[str], workdir: Path) -> tuple[list[dict], bool]:
    """The A/B section: (results per workload, whether every workload ran)."""
    rev_root = workdir / "rev"
    dirty = " + uncommitted changes" if git(ROOT, "status", "--porcelain", "--untracked-files=no") else ""
    this = Tree("this", ROOT, describe(ROOT, "HEAD") + dirty)
    print(f"\nA/B against {args.against}")
    print(f"  this     : {ROOT} @ {this.about}")
    try:
        add_worktree(ROOT, args.against, rev_root)
    except RuntimeError as exc:
        print(f"  cannot check out {args.against}: {exc}")
        return [], False
    results, ok = [], True
    try:
        rev = Tree(args.against, rev_root, describe(rev_root, "HEAD"))
        print(f"  {args.against:<9}: {rev_root} (temporary worktree) @ {rev.about}")
        print(f"  load     : {load_note()}", flush=True)
        trees = [this, rev]
        for i, tree in enumerate(trees):
            sweeps = workdir / f"sweeps_{i}"  # one per tree: both runners number their outputs alike
            sweeps.mkdir()
            cmd = [*PYTHON, "-m", "fastbp"]
            tree.runner = CommandRunner(args.threads, sweeps, cmd=cmd, env=tree.env(args.threads), quiet=True)
        for wl in workloads:
            try:
                results.append(ab_workload(wl, trees, args, sizes, workdir))
            except Exception as exc:  # noqa: BLE001 - report, go on with the next workload
                ok = False
                print(f"  A/B {wl} failed: {exc.__class__.__name__}: {exc}")
    finally:
        git(ROOT, "worktree", "remove", "--force", str(rev_root))
    return results, ok
