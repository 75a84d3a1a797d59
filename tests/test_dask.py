"""Issue 6: the same sweep on Dask (``fastbp sweep ... --backend dask [--address tcp://HOST:8786]``).

What is shown here, on a local cluster of 2 single-threaded worker processes (the CI machine has
2 cores):

- the Dask dataset equals the threaded one bit for bit: same files, same rows, same curves;
- ``--address`` (CLI), ``client=`` (API) and no address (a local cluster started for the sweep);
- resume: only missing shards are computed;
- a worker killed (SIGKILL) mid-sweep: its task is rerun elsewhere, the dataset completes with
  every run exactly once, equal to the threaded run;
- Numba threads per task = the host's cores // task slots on the host;
- refusals: Dask missing (one line, install hint), both address and client, an unreachable
  scheduler, several task threads in one process with Numba's ``workqueue`` layer;
- the core never imports Dask.

Numba compiles each kernel once per dtype and caches it on disk (``cache=True``); the module
fixture compiles in this process first so that fresh worker processes only load the cache.
"""

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time

import distributed  # noqa: E402  (make test installs the dask extra: CI must exercise it)
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from fastbp import cli  # noqa: E402
from fastbp.backends import dask as fdask  # noqa: E402
from fastbp.engine import sweep  # noqa: E402
from fastbp.errors import SpecError  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def spec_dict(dtype="float64", **changes):
    """Every init kind, a curve per run, several shards (one of them short)."""
    spec = {
        "name": "dask test",
        "steps": 120,
        "lr": [0.3, 1.0, 4.0],
        "dtype": dtype,
        "seed": 11,
        "record_every": 7,
        "shard_size": 192,
        "init": [
            {"kind": "course"},
            {"kind": "uniform", "low": -2.0, "high": 2.0, "count": 150},
            {"kind": "normal", "std": 0.5, "count": 40},
            {"kind": "xavier", "count": 9},
            {"kind": "fixed", "weights": [[0.1, -0.2, 0.3, -0.4, 0.5, -0.6, 0.7, -0.8]]},
        ],
    }
    spec.update(changes)
    return spec


def write_toml(path, spec):
    lines = []
    for key, value in spec.items():
        if key != "init":
            lines.append(f"{key} = {_toml(value)}")
    for block in spec["init"]:
        lines.append("[[init]]")
        lines += [f"{k} = {_toml(v)}" for k, v in block.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def _toml(value):
    if isinstance(value, str):
        return f'"{value}"'
    if isinstance(value, list):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return repr(value)


def read_sorted(path):
    return pq.read_table(path).sort_by("run")


def bits(column):
    """A column as comparable bytes: floats by their bits, nulls as a mask, lists flattened."""
    column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
    if pa.types.is_list(column.type):
        return bits(column.offsets) + bits(column.values)
    mask = np.asarray(column.is_null()).tobytes()
    values = column.fill_null(0) if column.null_count else column
    array = values.to_numpy(zero_copy_only=False)
    if array.dtype.kind == "f":
        array = array.view(np.uint32 if array.dtype.itemsize == 4 else np.uint64)
    return mask + (array.tobytes() if array.dtype != object else repr(list(array)).encode())


def assert_same_dataset(expected_dir, actual_dir):
    """Same shard files; same rows, curves and metadata, bit for bit."""
    names = lambda d: sorted(n for n in os.listdir(d) if not n.startswith("."))  # noqa: E731
    assert names(actual_dir) == names(expected_dir)
    expected, actual = read_sorted(expected_dir), read_sorted(actual_dir)
    assert actual.schema.equals(expected.schema, check_metadata=True)
    assert actual.num_rows == expected.num_rows
    for name in expected.column_names:
        assert bits(actual[name]) == bits(expected[name]), name


def assert_complete(path, n_runs):
    runs = np.sort(pq.read_table(path, columns=["run"])["run"].to_numpy())
    assert runs.tolist() == list(range(n_runs))  # every run, exactly once
    assert not [
        n for n in os.listdir(path) if n.startswith(".") and n != ".fastbp-lock"
    ]  # no temporaries left


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """Compile (or load) the kernels here first: worker processes then load Numba's disk cache."""
    base = tmp_path_factory.mktemp("warm")
    for dtype in ("float64", "float32"):
        tiny = spec_dict(dtype, lr=[1.0], init=[{"kind": "course"}], steps=3)
        sweep(tiny, base / dtype, progress=False)


@pytest.fixture(scope="module")
def client(warm):
    cluster = distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    client = distributed.Client(cluster)
    yield client
    client.close()
    cluster.close()


@pytest.fixture(scope="module")
def threaded(warm, tmp_path_factory):
    """The threaded datasets every Dask result is compared with, by dtype."""
    base = tmp_path_factory.mktemp("threaded")
    out = {}
    for dtype in ("float64", "float32"):
        out[dtype] = base / dtype
        sweep(spec_dict(dtype), out[dtype], progress=False)
    return out


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_dask_equals_threads_bit_for_bit(client, threaded, tmp_path, dtype):
    summary = sweep(spec_dict(dtype), tmp_path / "dask", backend="dask", client=client, progress=False)
    n_runs = 3 * (1 + 150 + 40 + 9 + 1)
    assert (summary.n_runs, summary.n_shards, summary.shards_computed) == (n_runs, 4, 4)
    assert_complete(tmp_path / "dask", n_runs)
    assert_same_dataset(threaded[dtype], tmp_path / "dask")
    # The client given is left open for the caller.
    assert client.status == "running"


def test_cli_address_and_resume(client, threaded, tmp_path, capsys):
    spec_path = write_toml(tmp_path / "spec.toml", spec_dict())
    out = tmp_path / "out"
    argv = [
        "sweep",
        str(spec_path),
        "--out",
        str(out),
        "--backend",
        "dask",
        "--address",
        client.scheduler.address,
        "--quiet",
    ]
    assert cli.main(argv) == 0
    assert "wrote 603 runs in 4 shard(s)" in capsys.readouterr().err
    assert_same_dataset(threaded["float64"], out)

    # Resume: two shards lost (one leaves a temporary behind, as a killed writer would).
    os.remove(out / "part-000001.parquet")
    os.remove(out / "part-000003.parquet")
    (out / ".part-000003.parquet.tmp-deadbeef").write_bytes(b"partial")
    summary = sweep(spec_dict(), out, backend="dask", client=client, progress=False)
    assert summary.shards_computed == 2
    assert_same_dataset(threaded["float64"], out)
    assert_complete(out, 603)

    # Nothing left to do: no task, no cluster needed.
    summary = sweep(spec_dict(), out, backend="dask", address="tcp://127.0.0.1:1", progress=False)
    assert summary.shards_computed == 0


def test_no_address_starts_a_local_cluster(threaded, tmp_path):
    summary = sweep(spec_dict(), tmp_path / "local", backend="dask", progress=False)
    assert summary.shards_computed == 4
    assert_same_dataset(threaded["float64"], tmp_path / "local")


def test_numba_threads_per_task(client, tmp_path):
    sweep(spec_dict(lr=[1.0], init=[{"kind": "course"}]), tmp_path / "d", progress=False)
    probes = client.run(fdask.probe_worker, str(tmp_path / "d"), None)
    assert len(probes) == 2 and all(p["reach"] is None for p in probes.values())
    plan = fdask.plan_threads(probes)
    assert plan == {"127.0.0.1": max(1, fdask.cpu_count() // 2)}
    # Inside a task: from the plan, or (a host missing from it) from the scheduler's view.
    assert client.submit(fdask._task_threads, {"127.0.0.1": 1}, pure=False).result() == 1
    assert client.submit(fdask._task_threads, {}, pure=False).result() == max(1, fdask.cpu_count() // 2)


def test_plan_threads_and_workqueue_check():
    def probe(host, pid, nthreads, layer="omp", cores=8):
        return {
            "host": host,
            "pid": pid,
            "nthreads": nthreads,
            "cores": cores,
            "numba_max_threads": cores,
            "layer": layer,
        }

    # Two hosts: 4 one-thread processes on a, 1 two-thread process on b.
    probes = {f"tcp://a:{k}": probe("a", k, 1) for k in range(4)}
    probes["tcp://b:1"] = probe("b", 9, 2, cores=6)
    assert fdask.plan_threads(probes) == {"a": 2, "b": 3}
    assert fdask.threading_problem(probes) is None
    # More slots than cores: still one thread each.
    assert fdask.plan_threads({f"tcp://c:{k}": probe("c", k, 1, cores=2) for k in range(5)}) == {"c": 1}
    # workqueue: fine with one task thread per process, refused with two (threads or in-process workers).
    two_processes = {"x": probe("a", 1, 1, "workqueue"), "y": probe("a", 2, 1, "workqueue")}
    assert fdask.threading_problem(two_processes) is None
    assert "workqueue" in fdask.threading_problem({"x": probe("a", 1, 2, "workqueue")})
    one_process = {"x": probe("a", 1, 1, "workqueue"), "y": probe("a", 1, 1, "workqueue")}
    assert "workqueue" in fdask.threading_problem(one_process)


def test_refusals(client, tmp_path, monkeypatch):
    with pytest.raises(SpecError, match="not both"):
        sweep(spec_dict(), tmp_path / "a", backend="dask", client=client, address="tcp://127.0.0.1:8786")
    import dask

    with dask.config.set({"distributed.comm.timeouts.connect": "1s"}):
        with pytest.raises(SpecError, match="running Dask scheduler"):
            sweep(spec_dict(), tmp_path / "b", backend="dask", address="tcp://127.0.0.1:1", progress=False)
    assert not (tmp_path / "b").exists()  # a refusal leaves nothing behind, not even a manifest
    with pytest.raises(SpecError, match="^threads: got 1; allowed: nothing with the dask backend"):
        sweep(spec_dict(), tmp_path / "e", backend="dask", client=client, threads=1)
    assert not (tmp_path / "e").exists()

    # Dask not installed: one line with the install hint (CLI exit code 2).
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(SpecError, match=r"pip install 'fastbp\[dask\]'"):
        sweep(spec_dict(), tmp_path / "c", backend="dask", progress=False)
    spec_path = write_toml(tmp_path / "spec.toml", spec_dict())
    proc_err = _run_cli_capture(["sweep", str(spec_path), "--out", str(tmp_path / "d"), "--backend", "dask"])
    assert proc_err[0] == 2
    assert proc_err[1].count("\n") == 1 and "pip install 'fastbp[dask]'" in proc_err[1]


def _run_cli_capture(argv):
    import contextlib
    import io

    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        code = cli.main(argv)
    return code, err.getvalue()


def test_core_never_imports_dask(tmp_path):
    code = textwrap.dedent(f"""
        import sys
        import fastbp, fastbp.cli, fastbp.engine, fastbp.storage, fastbp.spec, fastbp.table
        import fastbp.backends.dask  # importable without importing Dask
        assert fastbp.cli.main(["sweep", {str(write_toml(tmp_path / "s.toml", spec_dict(steps=2)))!r},
                                "--out", {str(tmp_path / "o")!r}, "--quiet"]) == 0
        print(sorted(m for m in sys.modules if m.split(".")[0] in ("dask", "distributed")))
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"


def test_workqueue_with_thread_workers_is_refused(tmp_path):
    """Two tasks at once in one process on Numba's workqueue layer would abort: refused up front."""
    code = textwrap.dedent(f"""
        import distributed
        from fastbp.engine import sweep
        from fastbp.errors import SpecError
        if __name__ == "__main__":
            cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                               dashboard_address=None,
                                               scheduler_kwargs={{"dashboard_address": "127.0.0.1:0"}})
            with cluster, distributed.Client(cluster) as client:
                try:
                    sweep({spec_dict(lr=[1.0])!r}, {str(tmp_path / "o")!r}, backend="dask", client=client,
                          progress=False)
                except SpecError as exc:
                    print("REFUSED", exc)
    """)
    env = dict(os.environ, NUMBA_THREADING_LAYER="workqueue")
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, env=env, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("REFUSED dask workers:") and "workqueue" in proc.stdout
    assert not list((tmp_path / "o").glob("part-*"))


# Last: it kills (and the nanny restarts) one of the module cluster's workers.
def test_killed_worker_task_is_retried(client, tmp_path):
    shard_size, n_shards = 2048, 12
    spec = spec_dict(
        steps=5000,
        record_every=0,
        shard_size=shard_size,
        lr=[0.5, 1.0, 2.0],
        init=[{"kind": "uniform", "count": shard_size * n_shards // 3}],
    )
    out = tmp_path / "killed"
    result = {}

    def run():
        try:
            result["summary"] = sweep(spec, out, backend="dask", client=client, progress=False)
        except BaseException as exc:  # reported below
            result["error"] = exc

    runner = threading.Thread(target=run)
    runner.start()
    deadline = time.monotonic() + 60
    while not list(out.glob("part-*.parquet")) and time.monotonic() < deadline:
        time.sleep(0.02)
    busy = [w for w, keys in client.processing().items() if keys]
    pids = client.run(os.getpid)
    victim = busy[0] if busy else next(iter(pids))
    killed_while = {k for k in client.processing()[victim]}
    done_at_kill = len(list(out.glob("part-*.parquet")))
    os.kill(pids[victim], signal.SIGKILL)
    runner.join(timeout=120)
    assert not runner.is_alive()
    assert "error" not in result, result.get("error")
    assert 1 <= done_at_kill < n_shards  # the kill landed mid-sweep
    assert killed_while  # ... while that worker was computing a shard
    assert result["summary"].shards_computed == n_shards
    assert_complete(out, shard_size * n_shards)

    reference = tmp_path / "threaded"
    sweep(spec, reference, progress=False)
    assert_same_dataset(reference, out)
    # The nanny replaced the killed process.
    client.wait_for_workers(2, timeout=30)
    assert pids[victim] not in client.run(os.getpid).values()


def test_a_trainability_map_on_dask_is_the_threaded_one(client, tmp_path):
    """Issue 17: the map of two rates, its regimes and sharpness, pixel for pixel on Dask."""
    spec = {
        "steps": 200,
        "lr_hidden": {"logspace": [0, 3.5], "num": 16},
        "lr_output": {"logspace": [0, 3.5], "num": 24},
        "record_every": 0,
        "shard_size": 128,
        "diagnostics": True,
        "columns": ["lr_hidden", "lr_output", "trainability", "regime", "sharpness_final"],
        "init": [{"kind": "course"}],
    }
    sweep(spec, tmp_path / "threads", progress=False)
    sweep(spec, tmp_path / "dask", backend="dask", client=client, progress=False)
    assert_complete(tmp_path / "dask", 16 * 24)
    assert_same_dataset(tmp_path / "threads", tmp_path / "dask")
