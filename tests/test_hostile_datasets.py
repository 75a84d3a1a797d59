"""Issue 25 (readers): a dataset directory may come from someone else, and whatever it holds,
``fastbp check`` answers a verdict (``damaged``, naming the file and why; exit 1), ``fastbp plot``
refuses with one line (exit 2) and the Python readers raise ``DatasetError``: never a crash
(TypeError, KeyError, MemoryError) or a hang. Each hostile directory is built here from a sound
dataset, and each command runs in a subprocess under a memory cap and a timeout (tests/hostile.py):
the old readers sized lists from the manifest's ``n_shards`` (MemoryError), indexed a manifest
that was a list or had no ``spec`` (a crash), and opened a FIFO named as a shard (waited forever).
"""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from hostile import one_line, run_capped

import fastbp
from fastbp.errors import DatasetError

SPEC = {
    "steps": 12,
    "lr": [0.5, 1.0],
    "record_every": 4,
    "shard_size": 64,
    "init": [{"kind": "course"}, {"kind": "uniform", "count": 63}],
}  # 128 runs in 2 shards of 64


@pytest.fixture(scope="module")
def sound(tmp_path_factory):
    """SPEC's dataset, made once; each test makes its own copy hostile."""
    return fastbp.sweep(SPEC, tmp_path_factory.mktemp("sound") / "runs", progress=False).out


@pytest.fixture
def copy(sound, tmp_path):
    return Path(shutil.copytree(sound, tmp_path / "runs"))


def edit_manifest(change):
    def edit(directory):
        path = directory / "_manifest.json"
        path.write_text(json.dumps(change(json.loads(path.read_text()))))

    return edit


def with_key(key, value):
    return edit_manifest(lambda manifest: {**manifest, key: value})


def without_key(key):
    return edit_manifest(lambda manifest: {k: v for k, v in manifest.items() if k != key})


def claim_count_in_metadata(directory):
    """No manifest, and every shard's metadata claiming an init block of 10**15 runs."""
    (directory / "_manifest.json").unlink()
    for shard in sorted(directory.glob("part-*.parquet")):
        table = pq.read_table(shard)
        block = json.loads(table.schema.metadata[b"fastbp"])
        block["spec"]["init"][1]["count"] = 10**15
        metadata = {**table.schema.metadata, b"fastbp": json.dumps(block).encode()}
        pq.write_table(table.replace_schema_metadata(metadata), shard)


def fifo_as_shard(directory):
    (directory / "part-000000.parquet").unlink()
    os.mkfifo(directory / "part-000000.parquet")


# (how the directory is made hostile, the file named, words of why)
HOSTILE = {
    "manifest claims 10**8 shards": (
        with_key("n_shards", 10**8),
        "_manifest.json",
        "'n_shards' is 100,000,000",
    ),
    "manifest claims 10**12 shards": (
        with_key("n_shards", 10**12),
        "_manifest.json",
        "'n_shards' is 1,000,000,000,000 where 128 runs in shards of 64 make 2",
    ),
    "n_shards a string": (with_key("n_shards", "2"), "_manifest.json", "'n_shards' is a string"),
    "manifest a JSON list": (
        edit_manifest(lambda manifest: [manifest]),
        "_manifest.json",
        "not a JSON object (a list)",
    ),
    "manifest without spec": (without_key("spec"), "_manifest.json", "no 'spec'"),
    "no manifest, metadata claims count 10**15": (
        claim_count_in_metadata,
        "part-000000.parquet",
        "more than a dataset holds",
    ),
    "a FIFO named part-000000.parquet": (fifo_as_shard, "part-000000.parquet", "not a regular file (a FIFO)"),
}


@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE)
def test_check_answers_damaged_naming_the_file(case, copy):
    make_hostile, name, why = HOSTILE[case]
    make_hostile(copy)
    proc = run_capped(["check", copy])
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr == ""
    first = proc.stdout.splitlines()[0]
    assert first.startswith(f"{copy}: damaged: ") and f"{name}: " in first and why in first, first
    assert f"  damaged: {name}: " in proc.stdout
    # the usual advice, run the sweep again, would be refused for a damaged manifest
    assert ("no sweep resumes this dataset" in proc.stdout) == (name == "_manifest.json")


@pytest.mark.slow
@pytest.mark.parametrize("case", HOSTILE)
def test_plot_refuses_in_one_line_and_draws_nothing(case, copy, tmp_path):
    make_hostile, name, why = HOSTILE[case]
    make_hostile(copy)
    proc = run_capped(["plot", copy, "--out", tmp_path / "figures"])
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert line.startswith("fastbp: error: dataset: ") and name in line and why in line, line
    assert not (tmp_path / "figures").exists()


@pytest.mark.slow
def test_a_partial_plot_draws_the_sound_shard_beside_a_fifo(copy, tmp_path):
    fifo_as_shard(copy)
    proc = run_capped(["plot", copy, "--out", tmp_path / "figures", "--format", "svg", "--partial"])
    assert proc.returncode == 0, proc.stderr
    assert "PARTIAL: 64 of the spec" in (tmp_path / "figures" / "overview.svg").read_text()


@pytest.mark.slow
def test_a_sweep_refuses_to_resume_a_manifest_that_claims_10_12_shards(copy):
    spec_file = copy.parent / "spec.toml"
    spec_file.write_text(
        "steps = 12\nlr = [0.5, 1.0]\nrecord_every = 4\nshard_size = 64\n"
        '[[init]]\nkind = "course"\n[[init]]\nkind = "uniform"\ncount = 63\n'
    )
    with_key("n_shards", 10**12)(copy)
    before = sorted(os.listdir(copy))
    proc = run_capped(["sweep", spec_file, "--out", copy, "--quiet"])
    assert proc.returncode == 2, proc.stderr
    line = one_line(proc.stderr)
    assert "_manifest.json" in line and "'n_shards' is 1,000,000,000,000" in line, line
    assert sorted(os.listdir(copy)) == before


# In-process (no hang or allocation is at stake here): the library's readers say the same.


@pytest.mark.parametrize("case", ["n_shards a string", "manifest a JSON list", "manifest without spec"])
def test_library_check_names_the_manifest_and_the_shards_stay_readable(case, copy):
    from fastbp.reading import check
    from fastbp.stats import summarise

    make_hostile, name, why = HOSTILE[case]
    make_hostile(copy)
    report = check(copy)
    assert not report.complete and report.damaged[0][0] == name and why in report.damaged[0][1]
    # the grid then comes from the shards' own metadata: both shards are sound against it
    assert report.sound == [0, 1] and report.n_runs == 128
    with pytest.raises(DatasetError, match="damaged: 1 damaged file"):
        summarise(copy)
    assert summarise(copy, partial=True).n_runs == 128


def test_a_grid_of_a_million_shards_is_checked_by_the_files_present(tmp_path):
    """A sound manifest of 999,999 shards with one present: the report holds what is there (one
    shard, one range of missing runs), not a list of every shard number."""
    from fastbp.reading import check
    from fastbp.spec import MAX_SHARDS

    out = tmp_path / "runs"
    big = {"steps": 2, "lr": 1.0, "shard_size": 1, "init": [{"kind": "uniform", "count": MAX_SHARDS}]}
    fastbp.sweep({**big, "init": [{"kind": "uniform", "count": 1}]}, tmp_path / "one", progress=False)
    out.mkdir()
    shutil.copy(tmp_path / "one" / "part-000000.parquet", out / "part-000000.parquet")
    from fastbp.spec import parse_spec
    from fastbp.storage import new_manifest

    (out / "_manifest.json").write_text(json.dumps(new_manifest(parse_spec(big), 1)))
    report = check(out)
    assert (report.n_shards, report.n_missing) == (MAX_SHARDS, MAX_SHARDS - 1)
    # the one shard there is of another spec (count 1): named, and every run is missing
    assert report.damaged == [("part-000000.parquet", "a shard of another spec")]
    assert report.missing_ranges() == [(0, MAX_SHARDS - 1)]
    assert report.summary().startswith(f"damaged: {MAX_SHARDS:,} of {MAX_SHARDS:,} runs missing (runs 0–")


def set_metadata(shard, text):
    table = pq.read_table(shard)
    pq.write_table(table.replace_schema_metadata({**table.schema.metadata, b"fastbp": text}), shard)


def test_a_shard_whose_metadata_is_a_json_list_is_named(copy):
    from fastbp.reading import check

    set_metadata(copy / "part-000001.parquet", b"[1, 2]")
    report = check(copy)
    assert report.sound == [0]
    assert report.damaged == [
        ("part-000001.parquet", "not a fastbp.sweep shard of a schema version this fastbp reads")
    ]


def test_two_names_for_one_shard_without_a_manifest(copy):
    from fastbp.reading import check

    (copy / "_manifest.json").unlink()
    shutil.copy(copy / "part-000000.parquet", copy / "part-0.parquet")
    report = check(copy)
    assert report.sound == [0, 1] and report.extra == ["part-0.parquet"]
    assert report.summary() == "damaged: 1 file(s) beyond the grid (part-0.parquet)"


@pytest.mark.slow
def test_a_fifo_behind_an_fsspec_filesystem_is_not_opened(copy):
    """Through fsspec the reader cannot stat: only what the listing calls a file is opened, and
    anything else is named as not a regular file (before: an unreadable footer, FileNotFoundError)."""
    pytest.importorskip("fsspec")
    fifo_as_shard(copy)
    script = (
        "import sys, fsspec; from fastbp.reading import check; "
        "print(check(sys.argv[1], filesystem=fsspec.filesystem('file')).summary())"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script, str(copy)], capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("damaged: 64 of 128 runs missing (runs 0–63); 1 damaged file(s)")
    assert "part-000000.parquet: not a regular file" in proc.stdout
