"""Issue 14: a dataset is either complete and verified, or says what is missing.

Each kind of damage a user has met: a shard truncated, emptied, filled with garbage, copied over
another, deleted; a shard of another spec. The rerun reports each bad file by name and computes
it again, and the dataset then equals a clean run's; ``fastbp check`` names what is wrong;
``fastbp plot`` refuses an incomplete dataset unless ``--partial``, and then says so.
"""

import contextlib
import io
import shutil

import pyarrow.dataset as ds
import pytest

import fastbp
from fastbp.cli import main

SPEC = {
    "steps": 40,
    "lr": [0.5, 1.0, 2.0],
    "record_every": 10,
    "shard_size": 64,
    "init": [{"kind": "course"}, {"kind": "uniform", "count": 63}],
}  # 192 runs in 3 shards of 64


def run(argv):
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


def table_of(path):
    return ds.dataset(str(path), format="parquet").to_table().sort_by("run")


@pytest.fixture(scope="module")
def clean(tmp_path_factory):
    path = tmp_path_factory.mktemp("clean") / "runs"
    fastbp.sweep(SPEC, path, progress=False)
    return path


@pytest.fixture
def copy(clean, tmp_path):
    target = tmp_path / "runs"
    shutil.copytree(clean, target)
    return target


def truncate(path):
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


DAMAGE = {
    "truncated": lambda d: truncate(d / "part-000001.parquet"),
    "emptied": lambda d: (d / "part-000001.parquet").write_bytes(b""),
    "garbage": lambda d: (d / "part-000001.parquet").write_bytes(b"\x00garbage" * 500),
    "copied over another": lambda d: shutil.copy(d / "part-000000.parquet", d / "part-000001.parquet"),
}


@pytest.mark.parametrize("kind", DAMAGE)
def test_a_damaged_shard_is_reported_and_computed_again(kind, clean, copy, capsys):
    DAMAGE[kind](copy)
    code, out, _ = run(["check", copy])
    assert code == 1
    assert "damaged" in out and "part-000001.parquet" in out and "runs 64–127" in out
    summary = fastbp.sweep(SPEC, copy, progress=False)
    assert summary.shards_computed == 1
    assert "part-000001.parquet is damaged" in capsys.readouterr().err
    assert table_of(copy).equals(table_of(clean))
    assert run(["check", copy])[0] == 0


def test_a_shard_of_another_spec_is_never_accepted(clean, copy, tmp_path):
    other = tmp_path / "other"
    fastbp.sweep({**SPEC, "seed": 7}, other, progress=False)
    shutil.copy(other / "part-000002.parquet", copy / "part-000002.parquet")
    code, out, _ = run(["check", copy])
    assert code == 1 and "part-000002.parquet: a shard of another spec" in out
    fastbp.sweep(SPEC, copy, progress=False)
    assert table_of(copy).equals(table_of(clean))


def test_check_reports_complete_and_missing_ranges(clean, copy):
    code, out, _ = run(["check", clean])
    assert code == 0 and "complete: 192 runs in 3 shards" in out
    (copy / "part-000001.parquet").unlink()
    code, out, _ = run(["check", copy])
    assert code == 1 and "incomplete: 64 of 192 runs missing (runs 64–127)" in out


def test_check_without_a_manifest_uses_the_shards_own_spec(clean, copy):
    (copy / "_manifest.json").unlink()
    assert run(["check", copy])[0] == 0
    (copy / "part-000002.parquet").unlink()
    code, out, _ = run(["check", copy])
    assert code == 1 and "runs 128–191" in out


def test_plot_refuses_an_incomplete_dataset_unless_partial(copy, tmp_path):
    (copy / "part-000002.parquet").unlink()
    code, _, err = run(["plot", copy, "--out", tmp_path / "figs"])
    assert code == 2 and err.count("\n") == 1
    assert "64 of 192 runs missing" in err and "--partial" in err
    assert not (tmp_path / "figs").exists()
    code, out, err = run(["plot", copy, "--out", tmp_path / "figs", "--format", "svg"])
    assert code == 2
    code, out, err = run(["plot", copy, "--out", tmp_path / "figs", "--format", "svg", "--partial"])
    assert code == 0, err
    overview = (tmp_path / "figs" / "overview.svg").read_text()
    assert "PARTIAL: 128 of the spec" in overview


def test_library_readers_refuse_too(copy):
    from fastbp.errors import SpecError
    from fastbp.stats import summarise

    (copy / "part-000000.parquet").write_bytes(b"")
    with pytest.raises(SpecError, match="damaged"):
        summarise(copy)
    assert summarise(copy, partial=True).n_runs == 128


# ---------------------------------------------------------------------------------------------
# One writer per dataset: two processes on one directory


def _start(spec_path, out, *extra):
    import subprocess
    import sys

    argv = [sys.executable, "-m", "fastbp", "sweep", str(spec_path), "--out", str(out), "--quiet", *extra]
    return subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _writing(out, timeout=120):
    """Wait until a sweep holds ``out`` and has written its first shard."""
    import time

    deadline = time.monotonic() + timeout
    lock = out / ".fastbp-lock"
    while time.monotonic() < deadline:
        if lock.exists() and lock.stat().st_size > 0 and any(out.glob("part-*.parquet")):
            return
        time.sleep(0.05)
    raise AssertionError("the first sweep never took the dataset and wrote a shard")


# A sweep that writes a shard of 64 runs every fraction of a second for minutes, keeping no loss
# curves (record_every = 0): it holds the dataset long enough, and costs little memory and disk
# (recording every step of 200,000 held 6.5 GB per shard in memory).
LONG = 'steps = 2000000\nrecord_every = 0\nlr = [0.5, 1.0]\nshard_size = 64\n[[init]]\nkind = "uniform"\ncount = 8192\n'
OTHER = LONG.replace("[0.5, 1.0]", "[0.25, 1.0]")

# Two sweeps that race for a new directory: the winner must still hold it when the loser, started
# at the same moment, asks (its kernel load and 3e8 run-steps), and it must complete (a few MB).
RACE = 'steps = 20000\nrecord_every = 1000\nlr = [0.5, 1.0]\nshard_size = 4096\n[[init]]\nkind = "uniform"\ncount = 8192\n'
RACE_OTHER = RACE.replace("[0.5, 1.0]", "[0.25, 1.0]")


@pytest.mark.parametrize(
    "first_text, second_text",
    [(LONG, LONG), (LONG, OTHER)],  # the specs' roles are symmetric: one order of the two stands for both
    ids=["same-spec", "other-spec"],
)
def test_a_second_sweep_is_refused_while_the_first_writes(tmp_path, first_text, second_text):
    first_spec = tmp_path / "a.toml"
    first_spec.write_text(first_text)
    other = tmp_path / "b.toml"
    other.write_text(second_text)
    out = tmp_path / "runs"
    first = _start(first_spec, out)
    try:
        _writing(out)
        second = _start(other, out)
        _, err = second.communicate(timeout=120)
        assert second.returncode == 2, err
        assert err.count("\n") == 1 and f"held by pid {first.pid}" in err and "since" in err
        assert first.poll() is None  # the first one is untouched and still running
    finally:
        first.terminate()
        first.wait(timeout=60)
    # nothing of the second spec got in: every present shard is the first spec's
    report = fastbp_check(out)
    assert report.sound and all(why != "a shard of another spec" for _, why in report.damaged)


def fastbp_check(out):
    from fastbp.reading import check

    return check(out)


def test_wait_lets_the_second_sweep_run_after_the_first(tmp_path):
    small = tmp_path / "small.toml"
    small.write_text('steps = 100\nlr = [0.5]\n[[init]]\nkind = "uniform"\ncount = 64\n')
    out = tmp_path / "runs"
    out.mkdir()
    from fastbp.locking import lock_dataset

    with lock_dataset(out):  # another writer holds it
        second = _start(small, out, "--wait")
        import time

        time.sleep(1.0)
        assert second.poll() is None  # waiting, not refused
    _, err = second.communicate(timeout=120)
    assert second.returncode == 0, err
    assert "waiting for the dataset" in err and fastbp_check(out).complete


def test_two_sweeps_started_together_on_a_new_directory(tmp_path):
    """Both start at the same moment into a directory neither has made yet: exactly one writes,
    the other is refused at once, and the dataset is the winner's alone, complete."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(RACE)
    b.write_text(RACE_OTHER)
    out = tmp_path / "new"
    procs = [_start(a, out), _start(b, out)]
    results = [p.communicate(timeout=300) for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 2], results
    loser = next(r[1] for p, r in zip(procs, results) if p.returncode == 2)
    assert "held by pid" in loser and loser.count("\n") == 1
    report = fastbp_check(out)
    assert report.complete and report.n_runs == 2 * 8192


def test_a_waiting_sweep_of_another_spec_is_refused_once_it_gets_the_dataset(tmp_path):
    """Both start together on a new directory, both with --wait: the loser waits while the winner
    makes and fills the dataset; under the lock it must then see that dataset and refuse it as
    another spec's, never write its own manifest over it."""
    a, b = tmp_path / "a.toml", tmp_path / "b.toml"
    a.write_text(RACE)
    b.write_text(RACE_OTHER)
    out = tmp_path / "new"
    procs = [_start(a, out, "--wait"), _start(b, out, "--wait")]
    results = [p.communicate(timeout=300) for p in procs]
    assert sorted(p.returncode for p in procs) == [0, 2], results
    loser = next(r[1] for p, r in zip(procs, results) if p.returncode == 2)
    assert "of a different spec" in loser
    report = fastbp_check(out)
    assert report.complete and not report.damaged


def test_what_another_sweep_made_while_this_one_waited_is_seen_under_the_lock(tmp_path, monkeypatch):
    """Deterministic form of the race above: the directory does not exist when this sweep looks,
    and another spec's sweep makes the whole dataset before this one gets the lock."""
    import subprocess
    import sys

    from fastbp import locking
    from fastbp.errors import DatasetError

    out = tmp_path / "new"
    other = tmp_path / "other.toml"
    other.write_text('steps = 20\nlr = [0.25]\n[[init]]\nkind = "uniform"\ncount = 64\n')
    real_lock = locking.lock_dataset

    def lock_after_another_sweep(directory, **kwargs):
        argv = [sys.executable, "-m", "fastbp", "sweep", str(other), "--out", str(directory), "--quiet"]
        subprocess.run(argv, check=True, capture_output=True)  # the one this sweep waited for
        return real_lock(directory, **kwargs)

    monkeypatch.setattr(locking, "lock_dataset", lock_after_another_sweep)
    spec = {"steps": 20, "lr": [0.5], "init": [{"kind": "uniform", "count": 64}]}
    with pytest.raises(DatasetError, match="of a different spec"):
        fastbp.sweep(spec, out, progress=False, wait=True)
    assert fastbp_check(out).complete  # the other sweep's dataset, untouched


def test_a_sweep_waiting_on_one_that_gives_up_makes_the_dataset_itself(tmp_path):
    """The first one made the directory, then was refused (e.g. no Dask scheduler) and removed
    what it made: the waiter must not be left holding a lock on a vanished file."""
    import time

    from fastbp import storage
    from fastbp.spec import load_spec

    spec_path = tmp_path / "s.toml"
    spec_path.write_text('steps = 20\nlr = [0.5]\n[[init]]\nkind = "uniform"\ncount = 64\n')
    out = tmp_path / "new"
    first = storage.open_dataset(out, load_spec(str(spec_path)), 64)
    waiter = _start(spec_path, out, "--wait")
    time.sleep(1.5)  # the waiter is blocked on the lock
    first.discard()  # gives up: manifest, lock file and directory removed
    _, err = waiter.communicate(timeout=120)
    assert waiter.returncode == 0, err
    assert fastbp_check(out).complete
