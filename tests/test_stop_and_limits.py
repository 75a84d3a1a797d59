"""Issue 14: prompt stop and live progress, a plan before a big run, and every bad input refused.

A shard that alone would take minutes is stopped by SIGINT (exit 130) or SIGTERM (exit 143)
long before it would finish, leaving no half-written file; the progress bar moves inside a
shard; the plan and ``--dry-run`` say what a sweep will do; each bad input that used to escape
as a traceback is refused with one line.
"""

import contextlib
import io
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastbp
from fastbp.cli import main
from fastbp.errors import SpecError

# One shard of 4,096 runs × 20,000,000 steps: minutes on any machine this runs on.
ENDLESS = 'steps = 20000000\nlr = [0.5]\nrecord_every = 0\n[[init]]\nkind = "uniform"\ncount = 4096\n'


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_signal_stops_a_long_shard_at_once(tmp_path, signum, code):
    spec = tmp_path / "endless.toml"
    spec.write_text(ENDLESS)
    out = tmp_path / "runs"
    argv = [sys.executable, "-m", "fastbp", "sweep", str(spec), "--out", str(out)]
    # SIGINT at its default, as from a terminal: a parent that ignores it (a pytest-xdist worker,
    # a shell's background job) would pass that on across exec, and Python would never see Ctrl-C.
    restore = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
    proc = subprocess.Popen(argv, stderr=subprocess.PIPE, text=True, preexec_fn=restore)
    line = proc.stderr.readline()  # the plan: printed once the dataset is held, before computing
    assert "plan:" in line, line
    time.sleep(1.5)  # well inside the shard
    proc.send_signal(signum)
    _, err = proc.communicate(timeout=30)  # the shard alone would take minutes
    assert proc.returncode == code, err
    assert "finished shards are kept" in err
    assert sorted(p.name for p in out.iterdir()) == [".fastbp-lock", "_manifest.json"]  # nothing half-written


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_the_progress_bar_moves_inside_a_shard(tmp_path, monkeypatch):
    from fastbp import kernels

    real_train = kernels.train
    monkeypatch.setattr(kernels, "train", lambda *a, **k: real_train(*a, **k, _slice_steps=50))
    screen = _Terminal()
    monkeypatch.setattr(sys, "stderr", screen)
    spec = {"steps": 1000, "lr": [0.5], "init": [{"kind": "uniform", "count": 256}]}  # one shard
    fastbp.sweep(spec, tmp_path / "runs")
    frames = screen.getvalue().split("\r")
    inside = [f for f in frames if "0/256 runs" in f and " 0.0 M run-steps/s" not in f]
    assert len(inside) >= 5, frames[:8]  # many redraws with a rate before the shard was done


def test_the_plan_and_dry_run(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text(
        'steps = 1000\nlr = [0.5, 1.0]\nshard_size = 64\n[[init]]\nkind = "uniform"\ncount = 100\n'
    )
    code, out, err = run(["sweep", spec, "--out", tmp_path / "runs", "--dry-run"])
    assert code == 0, err
    assert "200 runs × 1,000 steps in 4 shard(s)" in out and "0.2 M run-steps" in out
    assert "M run-steps/s (measured here)" in out
    assert not (tmp_path / "runs").exists()  # a dry run writes nothing
    code, _, err = run(["sweep", spec, "--out", tmp_path / "runs"])
    assert code == 0 and "plan: 200 runs" in err
    code, out, _ = run(["sweep", spec, "--out", tmp_path / "runs", "--dry-run"])
    assert code == 0 and out.endswith("in 4 shard(s); nothing to compute\n")
    other = tmp_path / "other.toml"  # a dry run refuses what the sweep would refuse
    other.write_text(spec.read_text().replace("lr = [0.5, 1.0]", "lr = [0.25]"))
    code, _, err = run(["sweep", other, "--out", tmp_path / "runs", "--dry-run"])
    assert code == 2 and "of a different spec" in err
    code, _, err = run(["sweep", other, "--out", spec, "--dry-run"])
    assert code == 2 and "this path is a file" in err


def test_a_grid_too_large_to_store_is_refused_before_anything(tmp_path):
    spec = tmp_path / "huge.toml"
    spec.write_text(
        'steps = 10\nlr = {logspace = [-2, 1], num = 1000000}\n[[init]]\nkind = "uniform"\ncount = 1000000\n'
    )
    started = time.perf_counter()
    code, _, err = run(["sweep", spec, "--out", tmp_path / "runs"])
    assert code == 2 and err.count("\n") == 1 and "999,999 shard files" in err
    assert time.perf_counter() - started < 60  # no enumeration of 10**12 runs (a bound, not a timing)
    assert not (tmp_path / "runs").exists()


BAD_FILES = {
    "binary": b"\x89PNG\r\n\x1a\n\x00\x00",
    "latin-1": "steps = 10 # caf\xe9\n".encode("latin-1"),
}


@pytest.mark.parametrize("kind", BAD_FILES)
def test_a_spec_file_that_is_not_utf8_text(tmp_path, kind):
    path = tmp_path / "spec.toml"
    path.write_bytes(BAD_FILES[kind])
    code, _, err = run(["sweep", path, "--out", tmp_path / "runs"])
    assert code == 2 and err.count("\n") == 1 and "UTF-8" in err
    assert not (tmp_path / "runs").exists()


GOOD = {"steps": 10, "lr": [0.5], "init": [{"kind": "course"}]}


@pytest.mark.parametrize(
    "change, field, fragment",
    [
        ({"lr": {"logspace": [-2, 1], "num": 100_000_000_000}}, "lr.num", "16,777,216"),
        ({"lr": [0.5, 1.0, 0.5]}, "lr[2]", "not already in the grid (lr[0] is 0.5)"),
        ({"lr": {"linspace": [1.0, 1.0], "num": 3}}, "lr[1]", "not already in the grid"),
    ],
)
def test_spec_refusals(tmp_path, change, field, fragment):
    with pytest.raises(SpecError) as excinfo:
        fastbp.sweep({**GOOD, **change}, tmp_path / "runs", progress=False)
    assert excinfo.value.field == field and fragment in str(excinfo.value)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "kwargs, field",
    [
        ({"out": None}, "out"),
        ({"out": 123}, "out"),
        ({"out": ""}, "out"),
        ({"out": "   "}, "out"),
        ({"progress": "no"}, "progress"),
        ({"overwrite": "yes"}, "overwrite"),
        ({"wait": 1}, "wait"),
    ],
)
def test_api_refusals_are_bad_input_errors(tmp_path, kwargs, field):
    kwargs = {"out": tmp_path / "runs", **kwargs}
    with pytest.raises(SpecError) as excinfo:
        fastbp.sweep(GOOD, **kwargs)
    assert excinfo.value.field == field
    assert not (tmp_path / "runs").exists()


def test_cli_refuses_an_empty_out(tmp_path):
    spec = tmp_path / "s.toml"
    spec.write_text('steps = 5\nlr = 0.5\n[[init]]\nkind = "course"\n')
    code, _, err = run(["sweep", spec, "--out", ""])
    assert code == 2 and err.startswith("fastbp: error: --out: got ''")


@pytest.mark.parametrize("rates", [(0.5, 2.0), np.array([0.5, 2.0]), [np.float32(0.5), 2]])
def test_lr_as_any_sequence_or_1d_array(tmp_path, rates):
    summary = fastbp.sweep({**GOOD, "lr": rates}, tmp_path / "runs", progress=False)
    assert summary.n_runs == 2


def test_a_directory_that_cannot_be_written_is_refused(tmp_path, monkeypatch):
    # As root (this machine's CI) permission bits do not bite: the write itself is made to fail.
    from fastbp import files

    def read_only(path, write, **kwargs):
        raise PermissionError(13, "Permission denied", path)

    monkeypatch.setattr(files, "write_atomically", read_only)
    code, _, err = run(["sweep", _spec(tmp_path), "--out", tmp_path / "runs"])
    assert code == 2 and err.count("\n") == 1 and "a writable directory" in err
    assert not (tmp_path / "runs").exists()  # the directory this call made is gone again


def _spec(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text('steps = 5\nlr = 0.5\n[[init]]\nkind = "course"\n')
    return path
