"""Which files an audit of some paths covers, and which it cannot, each named with why.

A folder means the workbooks in it and below it. The walk is a plain stack over ``os.scandir``
(no recursion to overflow) that remembers each folder's (device, inode), so a link back to a
folder already walked cannot loop. A link is followed only when it stays inside the folder; a
link leaving it, a link that cannot be followed, a folder that cannot be listed and a
workbook-named entry that is not a regular file (a FIFO, a device, a socket) are each returned as
``Skipped`` with the reason, never dropped without a word.
"""

import glob
import os
import stat
from dataclasses import dataclass

from fastbp.workbook_audit.archive import kind

EXCEL = (".xlsx", ".xlsm", ".xltx", ".xltm")


@dataclass(frozen=True)
class Skipped:
    """A path under the paths given that is not audited, and why."""

    path: str
    reason: str


def is_workbook_name(name):
    # Workbooks only (a grades.csv of a previous run is no submission); ~$book.xlsx is the lock
    # file Excel leaves beside an open workbook. A .csv named alone is read.
    return name.lower().endswith(EXCEL) and not name.startswith("~$")


def expand(paths):
    """Files to audit and ``Skipped`` entries: the paths given, a folder's workbooks, globs."""
    if isinstance(paths, (str, os.PathLike, Skipped)):
        paths = [paths]
    out = []
    for path in paths:
        if isinstance(path, Skipped):
            out.append(path)
            continue
        path = os.fspath(path)
        if os.path.isdir(path):
            out += walk(path)
        elif not os.path.lexists(path) and glob.has_magic(path):
            out += sorted(glob.glob(path, recursive=True))
        else:
            out.append(path)
    return out


def walk(top):
    """The workbooks under the folder ``top``, in sorted order, a folder's files before its subfolders."""
    root = os.path.realpath(top)
    seen = set()
    out = []
    stack = [top]
    while stack:
        folder = stack.pop()
        try:
            info = os.stat(folder)
            if (info.st_dev, info.st_ino) in seen:
                out.append(Skipped(folder, "a link to a folder already walked: not followed again"))
                continue
            seen.add((info.st_dev, info.st_ino))
            entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
        except OSError as exc:
            out.append(
                Skipped(folder, f"a folder that cannot be listed ({exc.strerror}): nothing in it audited")
            )
            continue
        folders = []
        for entry in entries:
            item = _entry(entry, root)
            if item == "folder":
                folders.append(entry.path)
            elif item is not None:
                out.append(item)
        stack += reversed(folders)
    return out


def _entry(entry, root):
    """ "folder", a path to audit, a Skipped, or None (not a workbook: not ours to mention)."""
    workbook = is_workbook_name(entry.name)
    try:
        link = entry.is_symlink()
        if link:
            target = os.path.realpath(entry.path)
            mode = os.stat(entry.path).st_mode  # raises for a loop or a dangling link
            if not stat.S_ISDIR(mode) and not workbook:
                return None
            if target != root and not target.startswith(root.rstrip(os.sep) + os.sep):
                return Skipped(entry.path, f"a link leaving the folder (to {target}): not followed")
        else:
            mode = entry.stat(follow_symlinks=False).st_mode
    except OSError as exc:
        if not workbook and not entry.is_dir(follow_symlinks=False):
            return None
        return Skipped(entry.path, f"a link that cannot be followed ({exc.strerror})")
    if stat.S_ISDIR(mode):
        return "folder"
    if not workbook:
        return None
    if not stat.S_ISREG(mode):
        return Skipped(entry.path, f"{kind(mode)}, not a regular file: skipped")
    return entry.path
