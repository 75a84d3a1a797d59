"""Atomic file writes: a file appears complete under its name, or not at all.

Every file fastbp writes (shards, the manifest, step tables, figures) goes through
``write_atomically``: it is written under a hidden temporary name in the same directory and
renamed over the final name when complete, so a killed writer never leaves a truncated file
under a real name; a failed write leaves nothing. On object stores (where rename is
copy-and-delete and an object appears only once complete) the write goes straight to the final
key. Importing this module loads nothing beyond the standard library.
"""

import os
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
