"""One writer per dataset: fastbp.locking against real second processes.

Holders run in their own interpreter (subprocess), so what is tested is the kernel's lock between
processes, its release when a holder is killed, and the record a refused sweep reads back.
"""

import contextlib
import datetime
import fcntl
import json
import os
import pickle
import select
import signal
import socket
import subprocess
import sys
import textwrap
import types

import pytest

from fastbp.errors import DatasetError
from fastbp.locking import LOCK_NAME, DatasetBusy, lock_dataset, no_lock_possible

TIMEOUT = 60  # generous: the machine is shared; nothing here should take more than a second

HOLDER = textwrap.dedent(
    """
    import os, sys, time
    from fastbp.locking import lock_dataset
    directory, mode = sys.argv[1], sys.argv[2]
    lock = lock_dataset(directory, command="fastbp sweep spec.toml\\n--out " + directory)
    print("locked", flush=True)
    if mode == "release-when-waited":
        # release only once the waiter has said it waits, so the test cannot pass by luck;
        # after 30 s anyway, so that a waiter that never says so fails instead of hanging
        deadline = time.monotonic() + 30
        while not os.path.exists(os.path.join(directory, "waiting")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(0.5)
        open(os.path.join(directory, "releasing"), "w").close()
        lock.release()
        print("released", flush=True)
    sys.stdin.read()  # hold (or stay alive after releasing) until the test closes stdin or kills us
    """
)

# Holds the OS lock without writing a record: the file keeps whatever the test put there.
RAW_HOLDER = textwrap.dedent(
    """
    import fcntl, os, sys
    fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    print("locked", flush=True)
    sys.stdin.read()
    """
)

ATTEMPT = textwrap.dedent(
    """
    import sys
    from fastbp.locking import DatasetBusy, lock_dataset
    try:
        lock_dataset(sys.argv[1])
    except DatasetBusy as exc:
        print(exc)
        sys.exit(2)
    """
)

WAITER = textwrap.dedent(
    """
    import sys
    from fastbp.locking import lock_dataset
    lock_dataset(sys.argv[1], wait=True, on_wait=lambda holder: print("waiting", holder["pid"], flush=True))
    print("acquired", flush=True)
    """
)


def start(script, *args):
    """A Python process running ``script``, once it has printed its first line (e.g. "locked")."""
    proc = subprocess.Popen(
        [sys.executable, "-c", script, *map(str, args)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=default_sigint,
    )
    return proc, read_line(proc)


def default_sigint():
    # pytest-xdist's workers ignore SIGINT and an ignored signal stays ignored across exec: Python
    # would then never raise KeyboardInterrupt. A helper gets Ctrl-C as from a terminal.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_line(proc):
    ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
    if not ready:
        proc.kill()
        pytest.fail("the helper process printed nothing")
    line = proc.stdout.readline().strip()
    if not line:
        pytest.fail(f"the helper process ended: {proc.wait(TIMEOUT)} {proc.stderr.read()}")
    return line


def finish(proc):
    proc.stdin.close()
    assert proc.wait(TIMEOUT) == 0, proc.stderr.read()


@contextlib.contextmanager
def deadline(seconds):
    """Fail instead of hanging if a blocking wait never returns (SIGALRM interrupts flock)."""

    def expired(signum, frame):
        raise TimeoutError(f"still blocked after {seconds} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.alarm(seconds)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


def record(directory):
    return json.loads((directory / LOCK_NAME).read_text())


def test_second_sweep_refused_at_once_naming_holder(tmp_path):
    before = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    holder, line = start(HOLDER, tmp_path, "hold")
    assert line == "locked"
    try:
        with pytest.raises(DatasetBusy) as caught:
            lock_dataset(tmp_path)
        busy = caught.value
        assert busy.holder["pid"] == holder.pid
        assert busy.holder["host"] == socket.gethostname()
        since = datetime.datetime.strptime(busy.holder["since"], "%Y-%m-%dT%H:%M:%S%z")
        assert before <= since <= datetime.datetime.now(datetime.UTC)
        message = str(busy)
        assert "\n" not in message  # the holder's command had a newline: still one line
        assert message == (
            f"out: got '{tmp_path}'; allowed: a dataset no other sweep is writing (held by pid "
            f"{holder.pid} on host {socket.gethostname()} since {busy.holder['since']}: fastbp sweep "
            f"spec.toml --out {tmp_path}; pass --wait / wait=True to wait for it, or stop that sweep)"
        )
        assert isinstance(busy, DatasetError) and busy.field == "out"
        again = pickle.loads(pickle.dumps(busy))
        assert (str(again), again.holder) == (message, busy.holder)
        # the loser left the winner's record alone (no truncation on open)
        assert record(tmp_path) == busy.holder

        # a second *process* is refused and exits at once, with the same one line
        attempt = subprocess.run(
            [sys.executable, "-c", ATTEMPT, str(tmp_path)], capture_output=True, text=True, timeout=TIMEOUT
        )
        assert attempt.returncode == 2, attempt.stderr
        assert attempt.stdout == message + "\n"
    finally:
        finish(holder)


def test_killed_holder_never_blocks(tmp_path):
    holder, _ = start(HOLDER, tmp_path, "hold")
    holder.kill()  # SIGKILL: no chance to release or clean up
    assert holder.wait(TIMEOUT) == -signal.SIGKILL
    # the file and the dead holder's record are still there; the kernel's lock is not
    assert record(tmp_path)["pid"] == holder.pid
    with lock_dataset(tmp_path) as lock:
        assert lock.holder["pid"] == os.getpid()
        assert record(tmp_path) == lock.holder


def test_wait_blocks_until_holder_releases(tmp_path):
    holder, _ = start(HOLDER, tmp_path, "release-when-waited")
    told = []

    def on_wait(info):
        told.append(info)
        (tmp_path / "waiting").touch()

    try:
        with deadline(TIMEOUT):
            lock = lock_dataset(tmp_path, wait=True, on_wait=on_wait)
        # we got it only after the holder began releasing, and the holder is still alive:
        # release() let go without the process ending
        assert (tmp_path / "releasing").exists()
        assert read_line(holder) == "released"
        assert holder.poll() is None
        assert [info["pid"] for info in told] == [holder.pid]
        assert record(tmp_path)["pid"] == os.getpid()
        lock.release()
    finally:
        finish(holder)


def test_wait_is_interrupted_by_sigint(tmp_path):
    with lock_dataset(tmp_path):
        waiter, line = start(WAITER, tmp_path)
        assert line == f"waiting {os.getpid()}"
        waiter.send_signal(signal.SIGINT)
        assert waiter.wait(TIMEOUT) != 0
        assert "KeyboardInterrupt" in waiter.stderr.read()
        assert waiter.stdout.read() == ""  # never acquired
        with pytest.raises(DatasetBusy):  # and we still hold it
            lock_dataset(tmp_path)


def test_waiter_on_a_deleted_lock_file_takes_the_new_one(tmp_path):
    """A lock file deleted by hand while a sweep waits on it: the waiter, woken on the old inode,
    must not count that as holding the dataset while someone holds the file now at the path."""
    holder, _ = start(HOLDER, tmp_path, "hold")
    waiter, line = start(WAITER, tmp_path)
    assert line == f"waiting {holder.pid}"
    (tmp_path / LOCK_NAME).unlink()
    with lock_dataset(tmp_path):  # a new file, free: ours
        finish(holder)  # the old inode is released; the waiter wakes on it
        # a broken waiter would print "acquired" now; a correct one waits for us (1 s is only
        # how long we look: a slow machine can hide the bug, never invent it)
        assert select.select([waiter.stdout], [], [], 1.0)[0] == []
    assert read_line(waiter) == "acquired"
    assert waiter.wait(TIMEOUT) == 0


def test_wait_when_free_takes_it_without_calling_on_wait(tmp_path):
    told = []
    with lock_dataset(tmp_path, wait=True, on_wait=told.append) as lock:
        assert lock.held
    assert told == []


def test_same_process_release_reacquire_and_second_lock_refused(tmp_path):
    first = lock_dataset(tmp_path)
    # flock belongs to the open file description: a second open in this process is refused too
    with pytest.raises(DatasetBusy) as caught:
        lock_dataset(tmp_path, field="directory")
    assert caught.value.holder == first.holder
    assert str(caught.value).startswith(f"directory: got '{tmp_path}'; allowed:")
    first.release()
    first.release()  # idempotent
    assert not first.held
    with lock_dataset(tmp_path) as second:
        assert second.held
        with pytest.raises(DatasetBusy):
            lock_dataset(tmp_path)
    assert not second.held
    lock_dataset(tmp_path).release()


def test_lock_file_kept_and_skipped_by_readers(tmp_path):
    import duckdb
    import pandas as pd
    import polars as pl
    import pyarrow as pa
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    table = pa.table({"run": [3, 1, 2], "loss": [0.5, 0.25, 0.125]})
    pq.write_table(table, tmp_path / "part-0.parquet")
    with lock_dataset(tmp_path):  # readers run while a sweep holds the dataset
        assert record(tmp_path)["pid"] == os.getpid()
        dataset = ds.dataset(tmp_path)
        assert dataset.files == [str(tmp_path / "part-0.parquet")]
        assert dataset.to_table().equals(table)
        assert pd.read_parquet(tmp_path)["run"].tolist() == [3, 1, 2]
        assert pl.scan_parquet(f"{tmp_path}/**/*.parquet").collect()["loss"].to_list() == [0.5, 0.25, 0.125]
        assert duckdb.sql(f"SELECT sum(run) FROM '{tmp_path}/**/*.parquet'").fetchall() == [(6,)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [LOCK_NAME, "part-0.parquet"]


def test_released_lock_names_nobody(tmp_path):
    """Issue 21: the file named the last holder long after its sweep had ended. Released, it is
    kept (the next holder locks the same inode) but empty; a refused sweep still reads a live one."""
    import fastbp

    out = tmp_path / "runs"
    fastbp.sweep({"steps": 5, "lr": [0.5], "init": [{"kind": "course"}]}, out, progress=False)
    assert (out / LOCK_NAME).exists() and (out / LOCK_NAME).read_bytes() == b""
    lock = lock_dataset(out, command="fastbp sweep again")
    assert record(out)["command"] == "fastbp sweep again"
    with pytest.raises(DatasetBusy, match="fastbp sweep again"):
        lock_dataset(out)
    lock.release()
    assert (out / LOCK_NAME).read_bytes() == b""


def dead_pid():
    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    return int(child.stdout)


@pytest.mark.parametrize("contents", ["empty", "garbage", "not-a-record", "dead-holder"])
def test_unreadable_or_stale_record_says_details_unavailable(tmp_path, contents):
    stale = {"pid": dead_pid(), "host": socket.gethostname(), "since": "2026-01-01T00:00:00Z", "command": "x"}
    data = {
        "empty": b"",  # a holder between its truncate and its write
        "garbage": b"\xff\xfe not json",
        "not-a-record": json.dumps({"pid": "12", "host": 3}).encode(),
        "dead-holder": json.dumps(stale).encode(),  # left by a killed sweep, read before the new holder wrote
    }[contents]
    (tmp_path / LOCK_NAME).write_bytes(data)
    holder, _ = start(RAW_HOLDER, tmp_path / LOCK_NAME)
    try:
        with pytest.raises(DatasetBusy) as caught:
            lock_dataset(tmp_path)
        assert caught.value.holder == {}
        assert "(held by another process (details unavailable); pass --wait" in str(caught.value)
    finally:
        finish(holder)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only directories")
def test_read_only_directory_refused_in_one_line(tmp_path):
    tmp_path.chmod(0o555)
    try:
        with pytest.raises(DatasetError) as caught:
            lock_dataset(tmp_path)
    finally:
        tmp_path.chmod(0o755)
    assert not isinstance(caught.value, DatasetBusy)
    assert_one_line(
        caught.value,
        tmp_path,
        f"a writable directory (cannot open {tmp_path / LOCK_NAME}: Permission denied)",
    )


def assert_one_line(error, directory, allowed):
    """The refusal names the field, the directory (shortened past 80 characters, as a long
    temporary path under pytest-xdist is) and what is allowed, on one line."""
    assert (error.field, error.value, error.allowed) == ("out", str(directory), allowed)
    head, tail = "out: got ", f"; allowed: {allowed}"
    text = str(error)
    assert text.startswith(head) and text.endswith(tail), text
    shown, full = text[len(head) : -len(tail)], repr(str(directory))
    if len(full) <= 80:
        assert shown == full
    else:  # its start and its end (the directory's own name), at most 80 characters
        assert len(shown) <= 80 and "..." in shown, shown
        start, end = shown.split("...", 1)
        assert full.startswith(start) and full.endswith(end) and len(end) >= 30, shown


@pytest.mark.parametrize("where", ["parent-is-a-file", "is-a-file", "missing"])
def test_unopenable_directory_refused_in_one_line(tmp_path, where):
    (tmp_path / "file").write_text("not a directory")
    directory = {
        "parent-is-a-file": tmp_path / "file" / "sub",
        "is-a-file": tmp_path / "file",
        "missing": tmp_path / "missing",
    }[where]
    why = "No such file or directory" if where == "missing" else "Not a directory"
    with pytest.raises(DatasetError) as caught:
        lock_dataset(directory)
    assert not isinstance(caught.value, DatasetBusy)
    assert_one_line(
        caught.value, directory, f"a writable directory (cannot open {directory / LOCK_NAME}: {why})"
    )
    assert not (tmp_path / "missing").exists()  # nothing created


def test_no_lock_possible_everywhere_but_local():
    import fsspec
    import pyarrow.fs as pafs

    local_fsspec = fsspec.filesystem("file")
    assert not no_lock_possible(pafs.LocalFileSystem())
    assert not no_lock_possible(local_fsspec)
    assert not no_lock_possible(pafs.PyFileSystem(pafs.FSSpecHandler(local_fsspec)))
    assert no_lock_possible(pafs.S3FileSystem(anonymous=True, region="us-east-1"))
    assert no_lock_possible(pafs.GcsFileSystem(anonymous=True))
    assert no_lock_possible(pafs.SubTreeFileSystem("/tmp", pafs.LocalFileSystem()))  # no local path as given
    assert no_lock_possible(fsspec.filesystem("memory"))
    assert no_lock_possible(pafs.PyFileSystem(pafs.FSSpecHandler(fsspec.filesystem("memory"))))
    # fsspec object stores, by protocol, without their (uninstalled) packages
    assert no_lock_possible(types.SimpleNamespace(protocol=("s3", "s3a")))
    assert no_lock_possible(types.SimpleNamespace(protocol=("gs", "gcs")))
    assert no_lock_possible(types.SimpleNamespace(protocol=("abfs", "az")))


def test_import_fastbp_does_not_import_locking():
    probe = "import sys, fastbp; print('fastbp.locking' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=TIMEOUT)
    assert out.stdout == "False\n", out.stderr


def test_flock_is_what_counts_not_the_file(tmp_path):
    """An unrelated process holding flock on the file refuses us; the file alone never does."""
    (tmp_path / LOCK_NAME).write_text(
        json.dumps({"pid": 1, "host": "elsewhere", "since": "x", "command": "y"})
    )
    with lock_dataset(tmp_path) as lock:  # a record naming another host, but no OS lock: taken
        assert lock.holder["host"] == socket.gethostname()
    fd = os.open(tmp_path / LOCK_NAME, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
