"""Issue 3: a sweep dataset opens in one line in pyarrow, pandas, Polars and DuckDB, and each sees
the same rows, even with side files in the directory (``_manifest.json``, a killed writer's
``.part-….tmp-…`` and ``._manifest.json.tmp-…``).

The one-liners are exactly the ones the README gives:

    pyarrow.dataset.dataset(DIR)
    pandas.read_parquet(DIR)
    polars.scan_parquet("DIR/**/*.parquet")
    duckdb: FROM 'DIR/**/*.parquet'
"""

import math
import os

import numpy as np
import pyarrow.dataset as ds
import pytest

import fastbp  # noqa: E402

SPEC = {
    "steps": 40,
    "record_every": 10,
    "tolerance": 1e-2,
    "shard_size": 16,
    "network": {"targets": [0.01, 0.01]},
    "init": [
        {"kind": "course"},
        {"kind": "uniform", "low": -2.0, "high": 2.0, "count": 30},
        {"kind": "fixed", "weights": [[0, 0, 0, 0, 1e3, -1e3, 1e3, -1e3]]},
    ],
}  # (lr: 3 values, 96 runs in 6 shards)

COLUMNS = (
    ["run", "lr", "init", "init_index"]
    + [f"w{k}_init" for k in range(1, 9)]
    + [f"w{k}" for k in range(1, 9)]
    + ["final_loss", "min_loss", "loss", "first_step_below_tol", "overflow", "init_block"]
)


@pytest.fixture(scope="module", params=["float64", "float32"])
def dataset(request, tmp_path_factory):
    out = tmp_path_factory.mktemp(f"readers-{request.param}") / "sweep out"  # a space in the path, too
    huge = 1e308 if request.param == "float64" else 1e38  # overflows lr * dE/dw1 in the dtype
    fastbp.sweep({**SPEC, "dtype": request.param, "lr": [0.5, 2.0, huge]}, out=str(out), progress=False)
    (out / ".part-000003.parquet.tmp-0123456789abcdef").write_bytes(b"PAR1 not a whole file")
    (out / "._manifest.json.tmp-0123456789abcdef").write_bytes(b"{")
    names = sorted(os.listdir(out))
    # hidden: a killed writer's temporaries and the writers' lock (issue 14), which readers skip
    hidden = [
        "._manifest.json.tmp-0123456789abcdef",
        ".fastbp-lock",
        ".part-000003.parquet.tmp-0123456789abcdef",
    ]
    assert names[:3] == hidden
    assert names[3] == "_manifest.json" and len(names) == 4 + 6
    expected = ds.dataset(str(out), format="parquet").to_table().sort_by("run").to_pydict()
    return out, expected


def assert_rows_equal(got, expected):
    """``got``: {column: list} from any reader; compared to pyarrow's, column by column."""
    order = np.argsort(got["run"])
    for name in COLUMNS:
        values = [got[name][k] for k in order]
        want = expected[name]
        assert len(values) == len(want) == 96, name
        if name == "loss":
            for a, b in zip(values, want, strict=True):
                assert np.array_equal(np.asarray(a, dtype=float), np.asarray(b, dtype=float)), name
        elif name == "first_step_below_tol":  # nullable: None / NaN / NA for "never"
            assert [None if _missing(v) else int(v) for v in values] == want
        elif isinstance(want[0], float):
            assert np.array_equal(np.asarray(values, dtype=float), np.asarray(want, dtype=float)), name
        else:
            assert [v.item() if hasattr(v, "item") else v for v in values] == want, name


def _missing(value):
    import pandas as pd

    return value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA


def test_the_dataset_has_what_the_readers_are_checked_on(dataset):
    _, expected = dataset
    assert expected["run"] == list(range(96))
    assert any(expected["overflow"]) and not all(expected["overflow"])
    assert None in expected["first_step_below_tol"]
    assert any(v is not None for v in expected["first_step_below_tol"])
    assert set(expected["init"]) == {"course", "uniform", "fixed"}
    assert all(len(curve) == 5 for curve in expected["loss"])


def test_pyarrow(dataset):
    out, expected = dataset
    table = ds.dataset(out).to_table()
    assert table.num_rows == 96
    assert_rows_equal(table.to_pydict(), expected)
    assert b"fastbp" in ds.dataset(out).schema.metadata


def test_pandas(dataset):
    import pandas as pd

    out, expected = dataset
    df = pd.read_parquet(out)
    assert len(df) == 96
    assert_rows_equal({c: df[c].tolist() for c in df.columns}, expected)
    assert df["run"].dtype == np.int64


def test_polars(dataset):
    import polars as pl

    out, expected = dataset
    df = pl.scan_parquet(f"{out}/**/*.parquet").collect()
    assert df.height == 96
    assert_rows_equal(df.to_dict(as_series=False), expected)
    assert df.schema["run"] == pl.Int64
    # a lazy query works on it as on any table
    best = (
        pl.scan_parquet(f"{out}/**/*.parquet")
        .filter(~pl.col("overflow"))
        .group_by("lr")
        .agg(pl.col("final_loss").min())
        .sort("lr")
        .collect()
    )
    assert best["lr"].to_list() == sorted(set(expected["lr"]))


def test_duckdb(dataset):
    import duckdb

    out, expected = dataset
    relation = duckdb.sql(f"FROM '{out}/**/*.parquet'")
    columns = relation.columns
    data = dict(zip(columns, map(list, zip(*relation.fetchall())), strict=True))
    assert len(data["run"]) == 96
    assert_rows_equal(data, expected)
    ((count,),) = duckdb.sql(f"SELECT count(*) FROM '{out}/**/*.parquet' WHERE NOT overflow").fetchall()
    assert count == 96 - sum(expected["overflow"])
