"""Issue 3 through the command line: ``fastbp sweep SPEC.toml --out DIR [--threads N] [--overwrite]``.

- bad specs and arguments: exit 2, one line naming the key and what is allowed, DIR not created;
- a sweep killed with SIGKILL and started again with the same command finishes without redoing
  the shards that were finished (same inode and mtime) and equals a clean run, bit for bit;
- another spec in the same DIR: refused, DIR untouched; ``--overwrite`` replaces it.

Most refusals call ``fastbp.cli.main`` in-process (fast); the exit codes of the real console
command are checked by subprocess too.
"""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from datasets import assert_same_data, read, snapshot
from hostile import one_line, run_capped

import fastbp  # noqa: E402
import fastbp.cli as cli  # noqa: E402

EXE = Path(sys.executable).parent / "fastbp"

GOOD = textwrap.dedent("""
    steps = 20
    lr = [0.5, 2.0]
    record_every = 5
    [[init]]
    kind = "course"
    [[init]]
    kind = "uniform"
    count = 4
""")


def run(argv):
    try:
        code = cli.main([str(a) for a in argv])
    except SystemExit as exc:
        code = exc.code
    return 0 if code is None else code


def write(tmp_path, text, name="spec.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def assert_refused(argv, fragments, capsys):
    code = run(argv)
    out, err = capsys.readouterr()
    assert code == 2, f"exit code {code}; stderr: {err!r}"
    assert out == ""
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, f"stderr should be one line: {err!r}"
    for fragment in fragments:
        assert fragment in lines[0], f"{fragment!r} not in {lines[0]!r}"
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Bad specs: (spec text, fragments the one-line message must hold: the key and what is allowed)

COURSE = '\n[[init]]\nkind = "course"\n'
BAD_SPECS = [
    # past what the kernels and the Parquet layout hold
    ("steps = 2147483648\nlr = 1" + COURSE, ["steps", "2147483647"]),
    ("steps = 10000000\nlr = 1\nrecord_every = 1" + COURSE, ["record_every", "recorded points per run"]),
    ("steps = 1000\nlr = 1\nshard_size = 10000000" + COURSE, ["shard_size", "2**31"]),
    # unknown keys, at every level
    ("steps = 5\nlr = 1\nstpes = 4" + COURSE, ["stpes", "steps"]),
    (
        "steps = 5\nlr = 1\n[network]\ninputs = [0.05, 0.1]\ntarget = [0.5, 0.5]" + COURSE,
        ["network.target", "targets"],
    ),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "uniform"\ncount = 3\nhgih = 2', ["init[0].hgih", "high"]),
    (
        'steps = 5\nlr = 1\n[[init]]\nkind = "course"\n[[init]]\nkind = "normal"\ncount = 2\nsigma = 1',
        ["init[1].sigma", "std"],
    ),
    # wrong types
    ('steps = "5"\nlr = 1' + COURSE, ["steps", "integer"]),
    ("steps = 5.5\nlr = 1" + COURSE, ["steps", "integer"]),
    ("steps = 5\nlr = true" + COURSE, ["lr", "number"]),
    ('steps = 5\nlr = "fast"' + COURSE, ["lr", "number"]),
    ('steps = 5\nlr = 1\ndtype = "float16"' + COURSE, ["dtype", "float64", "float32"]),
    ("steps = 5\nlr = 1\ndtype = 64" + COURSE, ["dtype", "float64"]),
    ("steps = 5\nlr = 1\nseed = 1.5" + COURSE, ["seed", "integer"]),
    ("steps = 5\nlr = 1\nrecord_every = -1" + COURSE, ["record_every", ">= 0"]),
    ("steps = 5\nlr = 1\nname = 7" + COURSE, ["name", "string"]),
    ("steps = 5\nlr = 1\nnetwork = 3" + COURSE, ["network"]),
    ("steps = 5\nlr = 1\n[network]\ninputs = [0.05]" + COURSE, ["network.inputs", "2"]),
    ('steps = 5\nlr = 1\n[network]\ntargets = ["a", "b"]' + COURSE, ["network.targets[0]", "number"]),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "fixed"\nweights = [[1, 2, 3]]', ["init[0].weights[0]", "8"]),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "uniform"\ncount = 2.0', ["init[0].count", "integer"]),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "gaussian"\ncount = 2', ["init[0].kind", "normal", "xavier"]),
    (
        'steps = 5\nlr = 1\n[[init]]\nkind = "xavier"\ncount = 2\ndistribution = "he"',
        ["init[0].distribution", "uniform"],
    ),
    # steps < 1
    ("steps = 0\nlr = 1" + COURSE, ["steps", ">= 1"]),
    ("steps = -3\nlr = 1" + COURSE, ["steps", ">= 1"]),
    # lr <= 0 or not finite
    ("steps = 5\nlr = 0" + COURSE, ["lr", "> 0"]),
    ("steps = 5\nlr = -0.1" + COURSE, ["lr", "> 0"]),
    ("steps = 5\nlr = [0.1, 0.0]" + COURSE, ["lr[1]", "> 0"]),
    ("steps = 5\nlr = nan" + COURSE, ["lr", "finite"]),
    ("steps = 5\nlr = inf" + COURSE, ["lr", "finite"]),
    ("steps = 5\nlr = [0.1, -inf]" + COURSE, ["lr[1]", "finite"]),
    ("steps = 5\nlr = [nan]" + COURSE, ["lr[0]", "finite"]),
    ("steps = 5\nlr = {logspace = [-2, 400], num = 3}" + COURSE, ["lr[2]", "finite"]),
    ("steps = 5\nlr = {linspace = [-1, 1], num = 3}" + COURSE, ["lr[0]", "> 0"]),
    ("steps = 5\nlr = {logspace = [-2, 0]}" + COURSE, ["lr", "num"]),
    ("steps = 5\nlr = {logspace = [-2, 0], num = 0}" + COURSE, ["lr.num", ">= 1"]),
    # count < 1
    ('steps = 5\nlr = 1\n[[init]]\nkind = "uniform"\ncount = 0', ["init[0].count", ">= 1"]),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "normal"\ncount = -2', ["init[0].count", ">= 1"]),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "xavier"', ["init[0].count", "integer"]),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "fixed"\nweights = []', ["init[0].weights"]),
    # an empty grid, no [[init]], missing keys
    ("steps = 5\nlr = []" + COURSE, ["lr", "at least one"]),
    ("steps = 5\nlr = 1\n", ["init", "[[init]]"]),
    ("steps = 5\nlr = 1\ninit = []\n", ["init", "non-empty"]),
    ("lr = 1" + COURSE, ["steps", "required"]),
    ("steps = 5" + COURSE, ["lr", "required"]),
    # ranges
    (
        'steps = 5\nlr = 1\n[[init]]\nkind = "uniform"\ncount = 2\nlow = 1\nhigh = 0',
        ["init[0].high", "> low"],
    ),
    ('steps = 5\nlr = 1\n[[init]]\nkind = "normal"\ncount = 2\nstd = -1', ["init[0].std", "> 0"]),
    ("steps = 5\nlr = 1\ntolerance = 0" + COURSE, ["tolerance", "> 0"]),
    ("steps = 5\nlr = 1\nshard_size = 0" + COURSE, ["shard_size", ">= 1"]),
    ('steps = 5\nlr = 1e300\ndtype = "float32"' + COURSE, ["lr[0]", "float32"]),
    # not TOML at all
    ("steps = 5\nlr = [0.1,\n", ["spec", "TOML"]),
    # issue 26: arrays nested 50,000 deep (tomllib recurses: RecursionError, exit 1, before)
    ("steps = 5\nlr = 1\nname = " + "[" * 50_000 + "]" * 50_000 + COURSE, ["spec", "valid TOML"]),
]


@pytest.mark.parametrize("text, fragments", BAD_SPECS, ids=[f[0] for _, f in BAD_SPECS])
def test_bad_spec_is_refused_with_one_line_and_nothing_written(text, fragments, tmp_path, capsys):
    spec = write(tmp_path, text)
    out = tmp_path / "out"
    line = assert_refused(["sweep", spec, "--out", out], fragments, capsys)
    assert line.startswith("fastbp: error: ")
    assert "allowed" in line or "TOML" in line
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["spec.toml"]


@pytest.mark.parametrize(
    "extra, fragments",
    [
        (["--threads", "0"], ["--threads", ">= 1"]),
        (["--threads", "two"], ["--threads", "integer"]),
        (["--threads", "100000"], ["threads", "cores"]),
        (["--backend", "mpi"], ["backend", "threads"]),
        (["--bogus"], ["--bogus"]),
    ],
)
def test_bad_arguments_are_refused(extra, fragments, tmp_path, capsys):
    spec = write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert_refused(["sweep", spec, "--out", out, *extra], fragments, capsys)
    assert not out.exists()


def test_missing_spec_file_and_missing_out(tmp_path, capsys):
    assert_refused(["sweep", tmp_path / "nope.toml", "--out", tmp_path / "out"], ["nope.toml"], capsys)
    assert_refused(["sweep", write(tmp_path, GOOD)], ["--out"], capsys)
    assert not (tmp_path / "out").exists()


def test_out_that_is_a_file_is_refused_and_untouched(tmp_path, capsys):
    spec = write(tmp_path, GOOD)
    target = tmp_path / "results.parquet"
    target.write_bytes(b"precious")
    for extra in ([], ["--overwrite"]):
        assert_refused(["sweep", spec, "--out", target, *extra], ["--out", "file"], capsys)
        assert target.read_bytes() == b"precious"
    # a directory that cannot be created (its parent is a file): bad input too, exit 2
    assert_refused(["sweep", spec, "--out", target / "sub"], ["--out", "directory"], capsys)
    assert target.read_bytes() == b"precious"


def test_a_sweep_and_its_rerun(tmp_path, capsys):
    spec = write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert run(["sweep", spec, "--out", out, "--threads", "1", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert "wrote 10 runs" in err and "[" not in err  # --quiet: no progress bar
    table = read(out)
    assert table.num_rows == 10
    assert table.column("run").to_pylist() == list(range(10))
    assert_same_data(table, read_api(GOOD, tmp_path / "api"))
    before = snapshot(out)
    assert run(["sweep", spec, "--out", out]) == 0
    assert "nothing to do" in capsys.readouterr().err
    assert snapshot(out) == before


def read_api(text, out):
    import tomllib

    fastbp.sweep(tomllib.loads(textwrap.dedent(text)), out=str(out), progress=False)
    return read(out)


def test_another_spec_in_the_same_out_is_refused_then_overwritten(tmp_path, capsys):
    out = tmp_path / "out"
    first = write(tmp_path, GOOD, "first.toml")
    assert run(["sweep", first, "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    before = snapshot(out)
    second = write(tmp_path, GOOD.replace("steps = 20", "steps = 21"), "second.toml")
    line = assert_refused(["sweep", second, "--out", out], ["--out", "different spec", "--overwrite"], capsys)
    assert str(out) in line
    assert snapshot(out) == before
    assert run(["sweep", second, "--out", out, "--overwrite", "--quiet"]) == 0
    capsys.readouterr()
    assert_same_data(read(out), read_api(GOOD.replace("steps = 20", "steps = 21"), tmp_path / "clean"))


# ---------------------------------------------------------------------------------------------
# The installed console command, as a user runs it


def console(args, **kw):
    if not EXE.exists():
        pytest.skip(f"console script not installed at {EXE}")
    return subprocess.run([str(EXE), *map(str, args)], capture_output=True, text=True, timeout=600, **kw)


def test_console_command_exit_codes(tmp_path):
    spec = write(tmp_path, GOOD)
    proc = console(["sweep", spec, "--out", tmp_path / "out", "--threads", "1"])
    assert proc.returncode == 0, proc.stderr
    assert "wrote 10 runs" in proc.stderr
    bad = write(tmp_path, "steps = 5\nlr = 1\nbogus = 1" + COURSE, "bad.toml")
    proc = console(["sweep", bad, "--out", tmp_path / "bad-out"])
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [proc.stderr.strip()]
    assert "bogus" in proc.stderr
    assert not (tmp_path / "bad-out").exists()


KILL_SPEC = """
    # many small shards, so that the sweep is still running when its first shard appears
    steps = 50
    lr = [0.2, 4.0]
    seed = 17
    record_every = 10
    shard_size = 64
    [[init]]
    kind = "course"
    [[init]]
    kind = "uniform"
    low = -2.0
    high = 2.0
    count = 6399
"""  # 2 x 6,400 runs = 200 shards
KILL_SHARDS = 200


def test_sigkill_then_the_same_command_finishes_without_redoing_shards(tmp_path):
    spec = write(tmp_path, KILL_SPEC)
    out = tmp_path / "out"
    argv = ["sweep", spec, "--out", out]
    if not EXE.exists():
        pytest.skip(f"console script not installed at {EXE}")
    proc = subprocess.Popen([str(EXE), *map(str, argv)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and any(n.startswith("part-") for n in os.listdir(out)):
                break
            time.sleep(0.005)
        assert proc.poll() is None, (
            "the sweep ended before it could be killed: " + proc.stderr.read().decode()
        )
        os.kill(proc.pid, signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL

    finished = {}
    for name in os.listdir(out):
        if name.startswith("part-"):
            st = os.stat(out / name)
            finished[name] = (st.st_ino, st.st_mtime_ns)
            pq.read_table(out / name)  # a finished shard is complete (written, then renamed)
    assert 1 <= len(finished) < KILL_SHARDS, len(finished)

    done = console(argv)
    assert done.returncode == 0, done.stderr
    assert "resuming" in done.stderr
    names = sorted(os.listdir(out))
    assert names == [".fastbp-lock", "_manifest.json"] + [
        f"part-{k:06d}.parquet" for k in range(KILL_SHARDS)
    ]  # no temporaries
    for name, (ino, mtime) in finished.items():
        st = os.stat(out / name)
        assert (st.st_ino, st.st_mtime_ns) == (ino, mtime), f"{name} was rewritten"

    import tomllib

    clean = tmp_path / "clean"
    fastbp.sweep(tomllib.loads(textwrap.dedent(KILL_SPEC)), out=str(clean), progress=False)
    assert_same_data(read(out), read(clean))


def test_a_dataset_made_by_other_kernel_code_is_not_resumed(tmp_path, capsys):
    """Finishing it with this code would mix two sets of numerics in one dataset."""
    import json

    spec = write(tmp_path, GOOD)
    out = tmp_path / "out"
    assert run(["sweep", spec, "--out", out, "--quiet"]) == 0
    capsys.readouterr()
    manifest = json.loads((out / "_manifest.json").read_text())
    manifest["kernel_source"] = "0" * 64  # as if an older fastbp had written it
    (out / "_manifest.json").write_text(json.dumps(manifest))
    before = snapshot(out)
    assert_refused(
        ["sweep", spec, "--out", out], ["--out", "other fastbp kernel code", "--overwrite"], capsys
    )
    assert snapshot(out) == before
    assert run(["sweep", spec, "--out", out, "--overwrite", "--quiet"]) == 0
    assert json.loads((out / "_manifest.json").read_text())["kernel_source"] != "0" * 64


def test_an_unknown_url_scheme_is_refused(tmp_path, capsys):
    assert_refused(
        ["sweep", write(tmp_path, GOOD), "--out", "nosuchscheme://bucket/x"],
        ["--out", "nosuchscheme://"],
        capsys,
    )


# ---------------------------------------------------------------------------------------------
# Issue 26: specs that cost memory or time before their refusal, run as a user would, under a
# memory cap (tests/hostile.py): /dev/zero was read until MemoryError at 3.3 GB, a FIFO waited
# forever, and two rate lists of 2**24 each were built (23 s, 2.7 GB) before their product was
# refused.

PAIRS = "steps = 5\nlr_hidden = {logspace = [-3, 0], num = 16777216}\nlr_output = {logspace = [-3, 0], num = 16777216}"


def fifo(tmp_path):
    os.mkfifo(tmp_path / "spec.toml")
    return tmp_path / "spec.toml"


def oversized(tmp_path):
    from fastbp.spec import MAX_SPEC_BYTES

    return write(tmp_path, GOOD + "#" * MAX_SPEC_BYTES)


SPECIAL_SPECS = [
    (lambda tmp_path: "/dev/zero", ["spec", "/dev/zero", "not a regular file (a character device)"]),
    (fifo, ["spec", "not a regular file (a FIFO)"]),
    (oversized, ["spec", "larger than 16,777,216 bytes"]),
    (
        lambda tmp_path: write(tmp_path, PAIRS + COURSE),
        ["lr_output", "16,777,216 × 16,777,216 pairs", "at most 16,777,216"],
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "make, fragments", SPECIAL_SPECS, ids=["dev-zero", "fifo", "oversized", "rate-pairs"]
)
def test_specs_that_cost_memory_are_refused_in_one_line(make, fragments, tmp_path):
    spec, out = make(tmp_path), tmp_path / "out"
    proc = run_capped(["sweep", spec, "--out", out], timeout=60)
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert all(fragment in line for fragment in fragments), line
    assert not out.exists()
