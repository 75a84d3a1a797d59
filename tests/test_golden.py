"""The golden datasets: files written by fastbp (schema version 1 by fastbp 0.1.0, then 2, and 3 of
the diagnostics), committed under ``tests/golden/``, that every later version must keep reading,
and that a fresh sweep of their committed spec must reproduce bit for bit while this fastbp still
writes their version.

``tests/golden/<case>/spec.toml`` is the spec; ``tests/golden/<case>/dataset/`` is what
``scripts/make_golden.py`` wrote from it (see that script for why the specs look as they do, and
when it may be run: only for a new schema version, into new directories). The tests here:

1. every reader the README names (pyarrow.dataset, pandas, Polars, DuckDB) reads the files, with
   the columns and types of their schema version listed explicitly below, and the ``fastbp``
   metadata block has the keys the README lists;
2. fastbp's own readers (the dataset summary and the figures) read them;
3. a fresh sweep of ``spec.toml`` reproduces them: the same values and bits (a NaN's sign bit
   aside, which the float32 kernel does not keep: see ``assert_same_bits``), the same metadata
   apart from ``versions``, the same Parquet bytes when the versions are the same;
4. a sweep of the same spec into a copy of the dataset resumes it: nothing to compute, nothing
   touched.

The normal and Xavier-normal blocks draw their weights with the C library's ``log``/``cos``
(README, "Reproducible bit for bit"): on a machine with another C library, test 3 may fail for
them and for nothing else.
"""

import json
import os
import shutil
import tomllib
import warnings
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest
from datasets import snapshot

import fastbp

# fastbp's own readers and its contract's constants: the only imports of fastbp's modules, so a
# module that moves or is renamed is retargeted here and nowhere else.
from fastbp.contract import DYNAMICS_VERSION, SCHEMA_VERSION
from fastbp.errors import DatasetError
from fastbp.plots import plot_dataset
from fastbp.spec import load_spec
from fastbp.stats import summarise
from fastbp.storage import kernel_source_stamp

GOLDEN = Path(__file__).parent / "golden"
# case -> (schema version, dtype)
CASES = {
    "v1": (1, "float64"),
    "v1-float32": (1, "float32"),
    "v2": (2, "float64"),
    "v2-float32": (2, "float32"),
    "v3": (3, "float64"),
    "v3-float32": (3, "float32"),  # with a choice of columns
}
# The figures `plot_dataset` writes (drawn for one case only: half a second a figure).
FIGURES = {"v1": ["loss_course", "loss_lr_0.7", "loss_lr_1e+308", "loss_lr_2.5", "overview", "reach"]}
# The versions this fastbp writes: a plain sweep's, and a sweep's with diagnostics, a stability
# list or a choice of columns. Their cases are swept again (tests 3 and 4); older ones only read.
WRITTEN = (SCHEMA_VERSION, DYNAMICS_VERSION)
CURRENT = [case for case, (version, _) in CASES.items() if version in WRITTEN]

# Schema version 1, column by column: (name, type, nullable); "D" is the sweep's dtype. Written
# out rather than taken from fastbp, so that any change to the schema fails here.
COLUMNS_V1 = [
    ("run", "int64", False),
    ("lr", "float64", False),
    ("init", "string", False),
    ("init_block", "int32", False),
    ("init_index", "int64", False),
    *((f"w{k}_init", "D", False) for k in range(1, 9)),
    *((f"w{k}", "D", False) for k in range(1, 9)),
    ("final_loss", "D", False),
    ("min_loss", "D", False),
    ("first_step_below_tol", "int64", True),
    ("overflow", "bool", False),
    ("loss", "list<D>", False),
]
# Schema version 2 adds, for every sweep, the rates per layer and the grid coordinates (issue 16).
COLUMNS_V2 = [
    *COLUMNS_V1[:2],
    ("lr_hidden", "float64", False),
    ("lr_output", "float64", False),
    *COLUMNS_V1[2:5],
    ("grid_x", "float64", True),
    ("grid_y", "float64", True),
    *COLUMNS_V1[5:],
]
# Schema version 3 adds the diagnostics (`diagnostics = true`) and the stability list
# (`stability_every`); with `columns = [...]` a dataset keeps only those (and run), in this order.
COLUMNS_V3 = [
    *COLUMNS_V2,
    ("sharpness_init", "float64", False),
    ("sharpness_final", "float64", False),
    ("stability_init", "float64", False),
    ("stability_final", "float64", False),
    ("max_loss", "D", False),
    ("max_loss_step", "int64", False),
    ("loss_increases", "int64", False),
    ("trainability", "float64", False),
    ("regime", "string", False),
    ("stability", "list<float64>", False),
]
COLUMNS = {1: COLUMNS_V1, 2: COLUMNS_V2, 3: COLUMNS_V3}
# The regimes (docs/model.md "Regimes"): those of runs that reached the tolerance, and the others.
REACHED = {"monotone", "bumpy", "catapult"}
NOT_REACHED = {"slow", "oscillating", "stuck", "diverged"}
# The keys of the `fastbp` metadata block: the README's list, plus `format`.
METADATA_KEYS = {
    "schema_version",
    "format",
    "spec",
    "dtype",
    "steps",
    "record_every",
    "recorded_steps",
    "tolerance",
    "versions",
    "columns",
}
# The spec keys that make a dataset schema version 3.
SCHEMA_3_KEYS = ("diagnostics", "stability_every", "columns")
VERSION_KEYS = {"fastbp", "numba", "numpy", "pyarrow", "python"}

# Each type of the list above as each reader names it.
_ARROW = {
    "int64": pa.int64(),
    "int32": pa.int32(),
    "float64": pa.float64(),
    "float32": pa.float32(),
    "string": pa.string(),
    "bool": pa.bool_(),
}
_DUCKDB = {
    "int64": "BIGINT",
    "int32": "INTEGER",
    "float64": "DOUBLE",
    "float32": "FLOAT",
    "string": "VARCHAR",
    "bool": "BOOLEAN",
}


def columns(case):
    """[(name, type, nullable)] of the case's schema version, "D" replaced by its dtype, only the
    spec's ``columns`` (and run) when it chooses some."""
    version, dtype = CASES[case]
    kept = spec_of(case).get("columns")
    return [
        (name, kind.replace("D", dtype), nullable)
        for name, kind, nullable in COLUMNS[version]
        if kept is None or name == "run" or name in kept
    ]


def data_dir(case):
    return GOLDEN / case / "dataset"


def spec_of(case):
    with open(GOLDEN / case / "spec.toml", "rb") as handle:
        return tomllib.load(handle)


def shard_files(directory):
    return sorted(p for p in Path(directory).iterdir() if p.suffix == ".parquet" and p.name[0] not in "._")


def metadata_block(path):
    return json.loads(pq.read_schema(path).metadata[b"fastbp"])


def recorded_steps(steps, record_every):
    """The README's rule: steps 0, k, 2k, … and the last step."""
    kept = list(range(0, steps + 1, record_every))
    return kept if kept[-1] == steps else [*kept, steps]


@pytest.fixture(scope="module", params=list(CASES))
def golden(request):
    """(case, the dataset as pyarrow reads it, sorted by run, as a dict of lists)."""
    table = ds.dataset(data_dir(request.param), format="parquet").to_table().sort_by("run")
    return request.param, table.to_pydict()


# ---------------------------------------------------------------------------------------------
# What the golden data holds: the cases the contract is tested on are really in it.


def test_the_golden_data_exercises_the_contract(golden):
    case, rows = golden
    spec = spec_of(case)
    steps, every = spec["steps"], spec["record_every"]
    n_inits = sum(block.get("count", len(block.get("weights", [0]))) for block in spec["init"])
    assert rows["run"] == list(range(len(spec["lr"]) * n_inits))
    assert steps % every != 0  # so that the last recorded step is `steps`, not a multiple of k
    assert any(rows["overflow"]) and not all(rows["overflow"])
    hits = rows["first_step_below_tol"]
    assert None in hits and any(h is not None for h in hits)
    assert set(rows["init"]) == {block["kind"] for block in spec["init"]}
    assert all(len(curve) == len(recorded_steps(steps, every)) for curve in rows["loss"])
    files = shard_files(data_dir(case))
    if "shard_size" in spec:  # several shards, the last one short
        sizes = [pq.read_metadata(f).num_rows for f in files]
        assert len(sizes) >= 2 and sizes[:-1] == [spec["shard_size"]] * (len(sizes) - 1)
        assert 0 < sizes[-1] < spec["shard_size"]
    else:
        assert len(files) == 1
    assert any(np.isnan(v) for curve in rows["loss"] for v in curve)  # NaN losses, not only weights
    if CASES[case][1] == "float64":
        w2 = np.array(rows["w2_init"])
        assert np.any((w2 == 0) & np.signbit(w2))  # a -0.0 weight, whose sign bit must survive
    if CASES[case][0] == 3:
        assert_exercises_schema_3(case, rows, spec)


def assert_exercises_schema_3(case, rows, spec):
    """The diagnostics: runs in several regimes, each agreeing with the run's other columns."""
    assert spec["diagnostics"] is True
    regimes = rows["regime"]
    assert "diverged" in regimes and regimes.count("diverged") < len(regimes)
    assert len(set(regimes) & REACHED) >= 2 and len(set(regimes) & NOT_REACHED) >= 3
    assert set(regimes) <= REACHED | NOT_REACHED
    assert [r == "diverged" for r in regimes] == rows["overflow"]
    for k, regime in enumerate(regimes):
        curve, highest = np.asarray(rows["loss"][k]), rows["max_loss"][k]
        if regime in REACHED:  # it ends below the tolerance, so it went below it at some step
            assert rows["first_step_below_tol"][k] is not None and rows["final_loss"][k] < spec["tolerance"]
            assert (highest > curve[0]) == (regime == "catapult"), k  # above its start: catapult
        if regime != "diverged":  # the highest loss over every step bounds the recorded ones
            assert highest >= np.max(curve) and highest >= rows["min_loss"][k], k
    if "columns" in spec:  # a choice of columns: only these, and fewer than the sweep has
        assert {name for name, _, _ in columns(case)} == {"run", *spec["columns"]}
        assert len(columns(case)) < len(COLUMNS_V3)
        return
    for k, regime in enumerate(regimes):
        rose, start_highest = rows["loss_increases"][k] > 0, rows["max_loss"][k] == rows["loss"][k][0]
        if regime in {"bumpy", "catapult", "oscillating"}:  # each of these rose at some step
            assert rose, k
        if regime != "diverged":  # never rose: E_0 is the highest; the first step there is 0 iff it is
            assert rose or start_highest, k
            assert (rows["max_loss_step"][k] == 0) == start_highest, k
    lr = np.array(rows["lr"])  # one rate: the stability number is lr·λ_max
    for when in ("init", "final"):
        sharpness, stability = np.array(rows[f"sharpness_{when}"]), np.array(rows[f"stability_{when}"])
        assert np.array_equal(lr * sharpness, stability, equal_nan=True), when
    if spec.get("stability_every"):  # the list at 0, k, 2k, … and the last step
        steps, every = spec["steps"], spec["stability_every"]
        assert steps % every != 0
        points = len(recorded_steps(steps, every))
        assert all(len(curve) == points for curve in rows["stability"])
        stability = np.array(rows["stability"])
        assert np.array_equal(stability[:, 0], rows["stability_init"], equal_nan=True)
        assert np.array_equal(stability[:, -1], rows["stability_final"], equal_nan=True)
        assert np.isnan(stability).any() and np.isfinite(stability).any()  # NaN where H overflows


# ---------------------------------------------------------------------------------------------
# 1. The readers the README names read it, with schema version 1's columns and types.


def test_pyarrow_reads_schema_v1(golden):
    case, rows = golden
    schema = ds.dataset(data_dir(case)).schema
    expected = []
    for name, kind, nullable in columns(case):
        if kind.startswith("list<"):
            item = _ARROW[kind[5:-1]]
            expected.append(pa.field(name, pa.list_(pa.field("item", item, nullable=False)), nullable))
        else:
            expected.append(pa.field(name, _ARROW[kind], nullable))
    assert schema.remove_metadata().equals(pa.schema(expected)), schema
    for path in shard_files(data_dir(case)):  # every file alone, too
        assert pq.read_schema(path).remove_metadata().equals(pa.schema(expected)), path.name
    assert len(rows["run"]) == sum(pq.read_metadata(f).num_rows for f in shard_files(data_dir(case)))


def test_the_fastbp_metadata_block(golden):
    case, rows = golden
    version, dtype = CASES[case]
    spec = spec_of(case)
    blocks = [metadata_block(path) for path in shard_files(data_dir(case))]
    assert all(block == blocks[0] for block in blocks)  # every file carries the same block
    meta = blocks[0]
    stability = "stability_every" in spec  # then the steps of the stability list too
    assert set(meta) == METADATA_KEYS | ({"stability_steps"} if stability else set())
    if stability:
        assert meta["stability_steps"] == recorded_steps(spec["steps"], spec["stability_every"])
    assert meta["schema_version"] == version
    assert meta["format"] == "fastbp.sweep"
    assert set(meta["versions"]) == VERSION_KEYS
    assert set(meta["columns"]) == {name for name, _, _ in columns(case)}
    assert all(isinstance(text, str) and text for text in meta["columns"].values())
    assert meta["dtype"] == meta["spec"]["dtype"] == dtype
    for key in ("steps", "record_every", "tolerance"):
        assert meta[key] == meta["spec"][key] == spec[key], key
    for key in SCHEMA_3_KEYS:  # stored only when given; the columns with run, in file order
        assert (key in meta["spec"]) == (key in spec), key
    assert (version == 3) == any(key in spec for key in SCHEMA_3_KEYS)
    for key in ("diagnostics", "stability_every"):
        assert meta["spec"].get(key) == spec.get(key), key
    if "columns" in spec:
        assert meta["spec"]["columns"] == [name for name, _, _ in columns(case)]
    assert meta["spec"]["lr"] == spec["lr"]
    assert meta["recorded_steps"] == recorded_steps(spec["steps"], spec["record_every"])
    assert meta["recorded_steps"][-1] == spec["steps"]
    # The dataset-level read the README shows gives the same block.
    assert json.loads(ds.dataset(data_dir(case)).schema.metadata[b"fastbp"]) == meta
    manifest = json.loads((data_dir(case) / "_manifest.json").read_text())
    assert manifest["schema_version"] == version and manifest["format"] == "fastbp.sweep"
    assert manifest["spec"] == meta["spec"]
    assert manifest["n_runs"] == len(rows["run"])
    assert manifest["n_shards"] == len(shard_files(data_dir(case)))


def assert_same_rows(got, expected, case):
    """``got``: {column: list} from some reader, compared to pyarrow's rows, NaN equal to NaN."""
    order = np.argsort(np.asarray(got["run"]))
    for name, kind, _ in columns(case):
        values, want = [got[name][k] for k in order], expected[name]
        assert len(values) == len(want), name
        if kind.startswith("list<"):
            for a, b in zip(values, want, strict=True):
                assert np.array_equal(np.asarray(a, float), np.asarray(b, float), equal_nan=True), name
        elif name == "first_step_below_tol":  # null as None, NaN or NA depending on the reader
            assert [None if _missing(v) else int(v) for v in values] == want, name
        elif kind.startswith("float"):
            assert np.array_equal(np.asarray(values, float), np.asarray(want, float), equal_nan=True), name
        else:
            assert [v.item() if hasattr(v, "item") else v for v in values] == want, name


def _missing(value):
    import pandas as pd

    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))


def test_pandas_reads_it(golden):
    import pandas as pd

    case, rows = golden
    df = pd.read_parquet(data_dir(case))
    assert list(df.columns) == [name for name, _, _ in columns(case)]
    for name, kind, _ in columns(case):
        dtype = df[name].dtype
        if kind == "string":
            assert pd.api.types.is_string_dtype(dtype), name
        elif kind.startswith("list<"):
            assert dtype == np.dtype(object), name
        elif name == "first_step_below_tol":  # an int64 column with nulls: pandas gives float64 + NaN
            assert dtype == np.float64, name
        else:
            assert dtype == np.dtype(kind), name
    assert_same_rows({c: df[c].tolist() for c in df.columns}, rows, case)


def test_polars_reads_it(golden):
    import polars as pl

    case, rows = golden
    types = {
        "int64": pl.Int64,
        "int32": pl.Int32,
        "float64": pl.Float64,
        "float32": pl.Float32,
        "string": pl.String,
        "bool": pl.Boolean,
    }
    df = pl.scan_parquet(f"{data_dir(case)}/**/*.parquet").collect()
    expected = {
        name: pl.List(types[kind[5:-1]]) if kind.startswith("list<") else types[kind]
        for name, kind, _ in columns(case)
    }
    assert dict(df.schema) == expected
    assert list(df.schema) == [name for name, _, _ in columns(case)]
    assert_same_rows(df.to_dict(as_series=False), rows, case)


def test_duckdb_reads_it(golden):
    import duckdb

    case, rows = golden
    relation = duckdb.sql(f"FROM '{data_dir(case)}/**/*.parquet'")
    expected = [
        _DUCKDB[kind[5:-1]] + "[]" if kind.startswith("list<") else _DUCKDB[kind]
        for _, kind, _ in columns(case)
    ]
    assert relation.columns == [name for name, _, _ in columns(case)]
    assert [str(t) for t in relation.types] == expected
    data = dict(zip(relation.columns, map(list, zip(*relation.fetchall())), strict=True))
    assert_same_rows(data, rows, case)


# ---------------------------------------------------------------------------------------------
# 2. fastbp's own readers read it.


def _curves(rows, lr, block):
    picked = [
        c
        for c, r, b in zip(rows["loss"], rows["lr"], rows["init_block"], strict=True)
        if (r, b) == (lr, block)
    ]
    return np.array(picked, dtype=np.float64)


def test_summarise_reads_it(golden):
    case, rows = golden
    spec = spec_of(case)
    summary = summarise(str(data_dir(case)))
    assert summary.n_runs == len(rows["run"])
    assert summary.lrs.tolist() == sorted(set(rows["lr"]))
    assert [(f.block, f.kind) for f in summary.families] == [
        (k, b["kind"]) for k, b in enumerate(spec["init"])
    ]
    assert summary.steps.tolist() == recorded_steps(spec["steps"], spec["record_every"])
    assert summary.tolerance == spec["tolerance"]
    uniform = next(k for k, b in enumerate(spec["init"]) if b["kind"] == "uniform")
    for k, lr in enumerate(summary.lrs.tolist()):
        course = _curves(rows, lr, 0)
        assert course.shape[0] == 1
        np.testing.assert_array_equal(summary.course[lr], course[0])
        band = summary.curves[lr][uniform]  # finite curves: numpy's exact quantiles
        np.testing.assert_array_equal(band.median, np.median(_curves(rows, lr, uniform), axis=0))
        for family in summary.families:
            mine = [
                i
                for i, (r, b) in enumerate(zip(rows["lr"], rows["init_block"]))
                if (r, b) == (lr, family.block)
            ]
            final = summary.final[family.block]
            assert final.final.n[k] == len(mine)
            assert final.overflow[k] == sum(rows["overflow"][i] for i in mine)
            assert final.reached[k] == sum(rows["first_step_below_tol"][i] is not None for i in mine)


# An lr axis that reaches 1e308 overflows harmlessly in plots (lrs[-1] / lrs[0]) and in
# matplotlib's log scale; the figures are still written.
@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
@pytest.mark.parametrize("case", list(FIGURES))
def test_plot_dataset_writes_its_figures(case, tmp_path):
    written = plot_dataset(str(data_dir(case)), tmp_path / "figures")
    names = sorted(os.listdir(tmp_path / "figures"))
    assert names == sorted(f"{stem}.png" for stem in FIGURES[case])
    assert sorted(os.path.basename(p) for p in written) == names
    for name in names:
        assert (tmp_path / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name


# ---------------------------------------------------------------------------------------------
# 3. A fresh sweep of spec.toml reproduces it; 4. a sweep into a copy of it resumes it.


@pytest.fixture(scope="module", params=CURRENT)
def fresh(request, tmp_path_factory):
    """(case, a fresh sweep of the case's spec.toml by this fastbp)."""
    out = tmp_path_factory.mktemp(f"fresh-{request.param}") / "dataset"
    fastbp.sweep(str(GOLDEN / request.param / "spec.toml"), out=str(out), progress=False)
    return request.param, out


def _without(block, *keys):
    return {k: v for k, v in block.items() if k not in keys}


def assert_same_bits(a, b, where):
    """Two tables hold the same values, bit for bit; returns whether their NaNs' signs agree too.

    Float columns (and the loss lists' values) are compared as unsigned integers of their
    width, so -0.0 and NaN payloads count. A NaN's sign bit is returned, not asserted: measured
    on this build, the float32 kernel gives the golden float32 dataset's overflowed curves NaNs
    of the opposite sign when Numba compiles it in the process (a cold cache, e.g. a fresh
    clone) from when it loads it from Numba's cache; the payloads and every other bit agree.
    """
    assert a.schema.remove_metadata().equals(b.schema.remove_metadata()), where
    assert a.num_rows == b.num_rows, where
    nan_signs_agree = True
    for name in a.column_names:
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        if pa.types.is_list(x.type):
            assert x.offsets.equals(y.offsets), f"{where}: {name}"
            x, y = x.flatten(), y.flatten()
        if not pa.types.is_floating(x.type):
            assert x.equals(y), f"{where}: {name}"
            continue
        xs, ys = x.to_numpy(zero_copy_only=False), y.to_numpy(zero_copy_only=False)
        uint = np.uint64 if xs.dtype == np.float64 else np.uint32
        bx, by = xs.view(uint), ys.view(uint)
        nan = np.isnan(xs)
        assert np.array_equal(nan, np.isnan(ys)), f"{where}: {name} has NaNs in other places"
        assert np.array_equal(bx[~nan], by[~nan]), f"{where}: {name} differs in some bits"
        sign = uint(1) << uint(8 * xs.itemsize - 1)
        assert np.array_equal(bx[nan] & ~sign, by[nan] & ~sign), f"{where}: {name}: other NaN payloads"
        nan_signs_agree &= bool(np.array_equal(bx[nan], by[nan]))
    return nan_signs_agree


def test_a_fresh_sweep_reproduces_it(fresh):
    case, out = fresh
    golden_dir = data_dir(case)
    assert sorted(n for n in os.listdir(out) if n != ".fastbp-lock") == sorted(os.listdir(golden_dir))
    for old, new in zip(shard_files(golden_dir), shard_files(out), strict=True):
        a, b = pq.read_table(old), pq.read_table(new)
        nan_signs_agree = assert_same_bits(a, b, old.name)
        meta_old, meta_new = metadata_block(old), metadata_block(new)
        assert _without(meta_old, "versions") == _without(meta_new, "versions"), old.name
        if not nan_signs_agree:  # then the bytes differ in those bits too
            warnings.warn(
                f"{case}/{old.name}: NaN sign bits differ from the golden dataset's (IEEE 754 leaves a "
                "NaN result's sign unspecified: it follows the operand order, which the one kernel "
                "body changed); every other bit matches; bytes not compared",
                stacklevel=1,
            )
            continue
        if meta_old["versions"] == meta_new["versions"]:
            # The same library versions: the files themselves are the same bytes.
            assert old.read_bytes() == new.read_bytes(), old.name
        # Whatever the versions, both tables written by this pyarrow with the same options and
        # the same metadata are the same bytes. When the versions differ this is the byte-level
        # check that is left: the recorded versions, and the Parquet writer's own version string
        # and choices, differ by construction, so the committed bytes cannot be reproduced.
        same = a.replace_schema_metadata(pq.read_schema(new).metadata)
        assert _parquet_bytes(same) == _parquet_bytes(b), old.name
    manifest_old = json.loads((golden_dir / "_manifest.json").read_text())
    manifest_new = json.loads((out / "_manifest.json").read_text())
    # kernel_source hashes the kernels' source text: edited without changing a bit, it differs.
    assert _without(manifest_old, "versions", "kernel_source") == _without(
        manifest_new, "versions", "kernel_source"
    )


OLDER = [case for case, (version, _) in CASES.items() if version not in WRITTEN]


@pytest.mark.parametrize("case", OLDER)
def test_an_older_golden_datasets_numbers_are_reproduced(case, tmp_path):
    """This version writes a newer schema, but the same spec still gives the older dataset's
    columns bit for bit (NaN signs aside, as above)."""
    out = tmp_path / "dataset"
    fastbp.sweep(str(GOLDEN / case / "spec.toml"), out=str(out), progress=False)
    for old, new in zip(shard_files(data_dir(case)), shard_files(out), strict=True):
        a = pq.read_table(old)
        b = pq.read_table(new).select(a.column_names)
        assert_same_bits(a, b, old.name)
        keep = ("versions", "schema_version", "columns")
        assert _without(metadata_block(old), *keep) == _without(metadata_block(new), *keep), old.name


def _parquet_bytes(table):
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return sink.getvalue().to_pybytes()


@pytest.mark.parametrize("case", CURRENT)
def test_a_sweep_into_a_copy_resumes_it(case, tmp_path):
    copy = tmp_path / "dataset"
    shutil.copytree(data_dir(case), copy)  # copy2: the same bytes and modification times
    before = snapshot(copy)
    spec = str(GOLDEN / case / "spec.toml")
    manifest = json.loads((copy / "_manifest.json").read_text())
    # The stamp covers the sources of the spec's numbers: the diagnostics' too when it has them.
    if manifest["kernel_source"] == kernel_source_stamp(load_spec(spec)):
        summary = fastbp.sweep(spec, out=str(copy), progress=False)
        assert (summary.shards_computed, summary.runs_computed) == (0, 0)
        assert summary.n_shards == len(shard_files(data_dir(case))) and summary.n_runs == manifest["n_runs"]
    else:
        # The kernels' source text changed since the dataset was written (test 3 says whether
        # any bit did): resume refuses by design, as made by other kernel code. It must not
        # take the golden spec for a different one: the stored spec still matches.
        with pytest.raises(DatasetError, match="made by other fastbp kernel code"):
            fastbp.sweep(spec, out=str(copy), progress=False)
    assert snapshot(copy) == before  # no file written, renamed or touched


def test_every_schema_version_written_has_a_golden_dataset():
    # A new schema version needs its own golden datasets (scripts/make_golden.py) and its column
    # list above; the older versions' stay and must still be read.
    for written in WRITTEN:
        have = sorted(dtype for case, (version, dtype) in CASES.items() if version == written)
        assert have == ["float32", "float64"], f"schema version {written}: run scripts/make_golden.py"
    assert sorted(p.name for p in GOLDEN.iterdir() if p.is_dir()) == sorted(CASES)
