"""Helpers the sweep tests share: read a dataset, compare two bit for bit, snapshot a directory."""

import os

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds


def read(out):
    """The dataset as one pyarrow table sorted by run."""
    return ds.dataset(str(out), format="parquet").to_table().sort_by("run")


def assert_same_data(a, b):
    """Two datasets hold the same rows, bit for bit (NaN included), compared by run (metadata aside)."""
    a, b = a.sort_by("run"), b.sort_by("run")
    assert a.column_names == b.column_names
    assert a.num_rows == b.num_rows
    for name in a.column_names:
        x, y = a.column(name).combine_chunks(), b.column(name).combine_chunks()
        assert x.type == y.type, name
        if pa.types.is_list(x.type):
            assert x.offsets.equals(y.offsets), name
            x, y = x.values, y.values
        if pa.types.is_floating(x.type):
            xs, ys = x.to_numpy(zero_copy_only=False), y.to_numpy(zero_copy_only=False)
            view = np.int64 if xs.dtype == np.float64 else np.int32
            assert np.array_equal(xs.view(view), ys.view(view)), f"{name} differs in some bits"
        else:
            assert x.equals(y), name


def snapshot(directory):
    """{name: (inode, mtime_ns, size, bytes)} of every file in a directory but the writers' lock
    (``.fastbp-lock``: every sweep takes it, so its times change; it holds no data)."""
    out = {}
    for entry in os.scandir(directory):
        if entry.name == ".fastbp-lock":
            continue
        st = entry.stat()
        with open(entry.path, "rb") as handle:
            out[entry.name] = (st.st_ino, st.st_mtime_ns, st.st_size, handle.read())
    return out
