"""Atomic file writes (a file appears complete under its name, or not at all), and reading
only regular files.

Every file fastbp writes (shards, the manifest, step tables, figures) goes through
``write_atomically``: it is written under a hidden temporary name in the same directory and
renamed over the final name when complete, so a killed writer never leaves a truncated file
under a real name; a failed write leaves nothing. On object stores (where rename is
copy-and-delete and an object appears only once complete) the write goes straight to the final
key. Importing this module loads nothing beyond the standard library.

Every file fastbp reads that someone else may have made (a spec, a manifest, a shard) is opened
through ``open_regular``: a FIFO under a shard's name would block the reader forever, and a
device file such as /dev/zero never ends.
"""

import errno
import os
import stat
import uuid

TEMPORARY_MARK = ".tmp-"


def temporary_name(name):
    """The hidden name a file is written under: readers and dataset checks skip dot files."""
    return f".{name}{TEMPORARY_MARK}{uuid.uuid4().hex}"


def is_temporary(name):
    return name.startswith(".") and TEMPORARY_MARK in name


def write_atomically(path, write, *, filesystem=None, rename=True):
    """Call ``write(stream)`` with a binary stream, then make the result appear as ``path``.

    ``filesystem``: a pyarrow filesystem (``path`` is then its path), or None for a local path.
    ``rename=False`` (object stores) writes straight to ``path``.
    """
    head, _, name = path.rpartition("/") if filesystem is not None else _split_local(path)
    target = f"{head}/{temporary_name(name)}" if rename else path
    try:
        if filesystem is None:
            with open(target, "wb") as stream:
                write(stream)
            if rename:
                os.replace(target, path)
        else:
            with filesystem.open_output_stream(target) as stream:
                write(stream)
            if rename:
                filesystem.move(target, path)
    except BaseException:
        delete_quietly(target, filesystem)
        raise


def delete_quietly(path, filesystem=None):
    try:
        if filesystem is None:
            os.remove(path)
        else:
            filesystem.delete_file(path)
    except (FileNotFoundError, OSError):
        pass


def _split_local(path):
    directory, name = os.path.split(os.path.abspath(path))
    return directory, None, name


class NotRegularFile(OSError):
    """A path that names a FIFO, a device or a socket (never opened), or a file larger than a
    reader's limit (``strerror`` says which)."""

    def __init__(self, path, why):
        super().__init__(errno.EINVAL, why, path)


_KINDS = (
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _check_regular(path, mode):
    if stat.S_ISREG(mode):
        return
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, "is a directory", path)
    kind = next((kind for test, kind in _KINDS if test(mode)), "not a file")
    raise NotRegularFile(path, f"not a regular file ({kind})")


def open_regular(path):
    """A binary read stream of the regular file at ``path`` (symbolic links followed).

    Anything else is refused before it is opened (``NotRegularFile``, ``IsADirectoryError``):
    opening a device can have effects of its own. The file is opened without waiting, in case
    a FIFO took its place since, and checked again once open."""
    _check_regular(path, os.stat(path).st_mode)
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    try:
        _check_regular(path, os.fstat(descriptor).st_mode)
        os.set_blocking(descriptor, True)
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_regular(path, limit):
    """The bytes of the regular file at ``path`` (``open_regular``), at most ``limit`` of them:
    a larger file is refused (``NotRegularFile``) after reading ``limit`` + 1 bytes."""
    with open_regular(path) as handle:
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise NotRegularFile(path, f"larger than {limit:,} bytes")
    return data
