"""The same shards as Dask tasks: ``sweep(spec, out, backend="dask", address=..., client=...)``.

The only module of fastbp that imports Dask, and only inside functions: ``import
fastbp.backends.dask`` works without Dask, and running without it raises a one-line
``SpecError`` with the install hint (``pip install 'fastbp[dask]'``).

One task per missing shard. A task receives the spec's canonical dict, the dataset's location and
a shard number (never arrays), reopens the dataset, skips the shard if its file exists, computes it
with ``shards.compute_shard`` and writes it with the dataset's atomic ``write_shard``. A shard is
a pure function of (spec, shard number), so a task the scheduler runs twice (a worker killed after
writing but before reporting, a retry after an error) writes the same bytes under the same name:
never a duplicate or missing run.

Numba threads: ``numba.set_num_threads`` is per calling thread and Numba ignores
``OMP_NUM_THREADS``, so every task sets it, to the host's cores divided by the task slots on that
host (all workers' threads there). Without it two one-thread workers on two cores would run four
compute threads. Several tasks in one process (``processes=False``, ``--nthreads 2``) call the
parallel kernel concurrently, which Numba's ``workqueue`` threading layer does not survive (it
aborts the process): that combination is refused before anything runs.
"""

import os
import time
import uuid

from fastbp.errors import SpecError

INSTALL_HINT = "pip install 'fastbp[dask]'"
#: Times a task that raised is retried (a killed worker's tasks are rescheduled by the scheduler,
#: up to its ``distributed.scheduler.allowed-failures``).
RETRIES = 3

_THREAD_LAYER_ADVICE = (
    "one task thread per worker process (dask worker --nworkers N --nthreads 1; "
    "LocalCluster(processes=True, threads_per_worker=1)), or a thread-safe Numba threading layer "
    "(pip install tbb, or NUMBA_THREADING_LAYER=omp on the workers)"
)


def import_distributed():
    """``dask.distributed``, or a one-line ``SpecError`` saying how to install it."""
    try:
        import distributed
    except ImportError as exc:
        raise SpecError(
            "backend", "dask", f"'threads', or 'dask' once Dask is installed: {INSTALL_HINT} ({exc})"
        ) from None
    return distributed


def check(threads=None, address=None, client=None):
    """Refusals that need no dataset: made before it is created."""
    if threads is not None:
        raise SpecError(
            "threads",
            threads,
            "nothing with the dask backend (each task uses its host's cores ÷ its task slots)",
        )
    import_distributed()
    if client is not None and address is not None:
        raise SpecError("address", address, "an address or a client, not both")


def run(spec, dataset, *, location, filesystem=None, progress=True, threads=None, address=None, client=None):
    """Compute the missing shards of ``dataset`` as Dask tasks; returns a ``shards.SweepSummary``.

    ``client``: a ``dask.distributed.Client`` to use (left open). Else ``address``: a scheduler
    to connect to (``tcp://HOST:8786``). Else a local cluster on 127.0.0.1, one single-threaded
    worker process per core, closed at the end. ``dataset`` is open and its temporaries removed
    (``engine.sweep`` does that); ``location``/``filesystem`` are how workers reach it.
    """
    distributed = import_distributed()
    from fastbp.contract import versions as recorded_versions
    from fastbp.progress import Progress
    from fastbp.shards import SweepSummary

    out = location
    todo = dataset.missing_shards()
    if not todo:
        Progress(dataset, spec, enabled=progress).close()
        return SweepSummary(dataset.path, spec.n_runs, dataset.n_shards, 0, 0.0, 0.0)

    location = worker_location(dataset, out, filesystem)
    versions = recorded_versions()
    client, owned = _connect(distributed, address, client)
    try:
        try:
            probes = client.run(probe_worker, location, filesystem)
        except Exception as exc:  # typically: fastbp is not installed on the workers
            allowed = f"workers with fastbp {versions['fastbp']} installed ({type(exc).__name__}: {exc})"
            raise SpecError("dask workers", "workers that cannot run fastbp", allowed) from None
        check_workers(probes, versions, out)
        threads_by_host = plan_threads(probes)
        spec_dict = spec.as_dict()
        token = uuid.uuid4().hex[:12]
        bar = Progress(dataset, spec, enabled=progress)
        started = time.perf_counter()
        futures = client.map(
            run_shard,
            todo,
            key=[f"fastbp-shard-{shard:06d}-{token}" for shard in todo],
            pure=False,
            retries=RETRIES,
            spec_dict=spec_dict,
            location=location,
            filesystem=filesystem,
            threads_by_host=threads_by_host,
            versions=versions,
        )
        try:
            for future in distributed.as_completed(futures):
                shard, _computed = future.result()
                bar.shard_done(shard)
        except BaseException:
            client.cancel(futures)
            raise
        finally:
            bar.close()
        seconds = time.perf_counter() - started
    finally:
        for resource in reversed(owned):
            resource.close()
    dataset.remove_temporaries()
    return SweepSummary.of_shards(spec, dataset, todo, seconds)


def worker_location(dataset, out, filesystem):
    """What workers open: ``out`` as given for a URL or an explicit filesystem, else the absolute path."""
    if filesystem is not None or "://" in os.fspath(out):
        return os.fspath(out)
    return dataset.path


def _connect(distributed, address, client):
    """(client, [things to close]) for a given client, a scheduler address or a new local cluster."""
    if client is not None:
        return client, []
    if address is not None:
        try:
            client = distributed.Client(address)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            allowed = f"the address of a running Dask scheduler, e.g. tcp://HOST:8786 ({exc})"
            raise SpecError("address", address, allowed) from None
        return client, [client]
    cluster = distributed.LocalCluster(
        n_workers=cpu_count(),
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=None,
        scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},
    )
    try:
        client = distributed.Client(cluster)
    except BaseException:
        cluster.close()
        raise
    return client, [cluster, client]


def cpu_count():
    """Cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return os.cpu_count() or 1


def threading_layer():
    """Numba's threading layer in this process ('tbb', 'omp', 'workqueue'), starting it if need be."""
    import numba

    try:
        return numba.threading_layer()
    except ValueError:  # not started yet: start it (no compilation needed)
        pass
    try:
        from numba.np.ufunc import parallel

        parallel._launch_threads()
        return numba.threading_layer()
    except Exception as exc:  # pragma: no cover - a broken Numba install
        return f"unknown ({exc})"


def _worker_slots(worker):
    state = getattr(worker, "state", None)
    return int(getattr(state, "nthreads", None) or getattr(worker, "nthreads", 1))


def probe_worker(location, filesystem, dask_worker=None):
    """What the client needs to know about one worker (run there by ``Client.run``)."""
    import numba
    from distributed.comm import get_address_host

    from fastbp import storage
    from fastbp.contract import versions

    try:
        storage.open_existing(location, filesystem)
        reach = None
    except Exception as exc:
        reach = f"{type(exc).__name__}: {exc}"
    return {
        "host": get_address_host(dask_worker.address),
        "pid": os.getpid(),
        "nthreads": _worker_slots(dask_worker),
        "cores": cpu_count(),
        "numba_max_threads": numba.config.NUMBA_NUM_THREADS,
        "layer": threading_layer(),
        "versions": versions(),
        "reach": reach,
    }


def check_workers(probes, versions, out):
    """Refuse (``SpecError``) workers that cannot give this machine's results or reach ``out``."""
    for address, probe in sorted(probes.items()):
        if probe["versions"] != versions:
            diff = ", ".join(
                f"{k} {probe['versions'].get(k)} (here {v})"
                for k, v in versions.items()
                if probe["versions"].get(k) != v
            )
            raise SpecError(
                "dask worker",
                address,
                "workers with the same fastbp, numba, numpy, pyarrow and Python versions as this "
                f"machine, recorded in every shard (this one has {diff})",
            )
        if probe["reach"] is not None:
            raise SpecError(
                "out",
                os.fspath(out),
                f"a location every Dask worker reaches, e.g. s3://… or a shared (NFS) path; "
                f"worker {address} cannot open it ({probe['reach']})",
            )
    problem = threading_problem(probes)
    if problem:
        raise SpecError(
            "dask workers",
            problem,
            f"{_THREAD_LAYER_ADVICE}; Numba's 'workqueue' layer aborts the process when two tasks "
            "in it run a parallel kernel at once",
        )


def threading_problem(probes):
    """A description of processes that would run parallel kernels concurrently on ``workqueue``."""
    processes = {}
    for probe in probes.values():
        key = (probe["host"], probe["pid"])
        slots, _ = processes.get(key, (0, None))
        processes[key] = (slots + probe["nthreads"], probe["layer"])
    for (host, _pid), (slots, layer) in sorted(processes.items()):
        if slots > 1 and layer == "workqueue":
            return f"{slots} task threads in one process ({host}) on Numba's workqueue layer"
    return None


def plan_threads(probes):
    """Numba threads per task, by host: the host's cores // all task slots on that host (≥ 1)."""
    hosts = {}
    for probe in probes.values():
        cores, slots, cap = hosts.get(probe["host"], (0, 0, None))
        cap = probe["numba_max_threads"] if cap is None else min(cap, probe["numba_max_threads"])
        hosts[probe["host"]] = (max(cores, probe["cores"]), slots + probe["nthreads"], cap)
    return {host: max(1, min(cap, cores // max(1, slots))) for host, (cores, slots, cap) in hosts.items()}


def _task_threads(threads_by_host):
    """This task's Numba thread count: from the plan, or (a worker that joined later) asked now."""
    import numba

    try:
        from distributed import get_worker
        from distributed.comm import get_address_host

        worker = get_worker()
        host = get_address_host(worker.address)
    except Exception:  # not inside a worker (e.g. called directly)
        return numba.get_num_threads()
    threads = threads_by_host.get(host)
    if threads is None:
        slots = _worker_slots(worker)
        try:  # every worker on this host, not just this one
            from distributed import get_client

            info = get_client().scheduler_info(n_workers=-1)["workers"].values()
            slots = max(slots, sum(w["nthreads"] for w in info if w.get("host") == host))
        except Exception:
            pass
        threads = max(1, cpu_count() // slots)
    return max(1, min(threads, numba.config.NUMBA_NUM_THREADS))


def run_shard(shard, spec_dict, location, filesystem, threads_by_host, versions):
    """One task: write shard ``shard`` of the dataset at ``location`` unless it exists.

    Returns ``(shard, computed)``. Everything it needs is in its arguments (the spec's canonical
    dict, not arrays) and in the dataset's manifest.
    """
    import numba
    import pyarrow.fs as pafs

    from fastbp import storage
    from fastbp.contract import versions as current_versions
    from fastbp.shards import compute_shard
    from fastbp.spec import canonical_json
    from fastbp.verify import shard_problem

    dataset = storage.open_existing(location, filesystem)
    if canonical_json(dataset.manifest["spec"]) != canonical_json(spec_dict):
        raise RuntimeError(f"the dataset at {location} now holds another spec (replaced during the sweep?)")
    path = dataset.shard_path(shard)
    if dataset.filesystem.get_file_info(path).type == pafs.FileType.File:
        start, stop = dataset.shard_runs(shard)
        if shard_problem(dataset.filesystem, path, canonical_json(spec_dict), start, stop) is None:
            return shard, False  # a retried task whose first run finished: the same bytes are there
        # otherwise a damaged or foreign file: computed and written over
    mine = current_versions()
    if mine != versions:
        raise RuntimeError(f"this worker has versions {mine}, the sweep was started with {versions}")
    if dataset.manifest.get("kernel_source") != storage.kernel_source_stamp(reparse_spec(spec_dict)):
        raise RuntimeError(
            "this worker's fastbp kernel sources differ from the ones that created the "
            "dataset (same version string, other code): install the same fastbp everywhere"
        )
    try:
        from distributed import get_worker

        slots = _worker_slots(get_worker())
    except Exception:
        slots = 1
    if slots > 1 and threading_layer() == "workqueue":
        raise RuntimeError(
            f"{slots} task threads in this worker with Numba's 'workqueue' threading layer; "
            f"use {_THREAD_LAYER_ADVICE}"
        )
    spec = reparse_spec(spec_dict)
    threads = _task_threads(threads_by_host)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)  # per calling thread: must be set inside the task
    try:
        table = compute_shard(spec, shard, dataset.shard_size, versions)
    finally:
        numba.set_num_threads(previous)
    dataset.write_shard(shard, table)
    return shard, True


def reparse_spec(spec_dict):
    """The ``SweepSpec`` whose canonical dict (``as_dict()``) is ``spec_dict``: what a task receives."""
    from fastbp.spec import canonical_json, parse_spec

    spec = parse_spec(spec_dict)
    if canonical_json(spec.as_dict()) != canonical_json(spec_dict):
        raise RuntimeError("the spec sent to this task does not parse back to itself")
    return spec
