"""Opening an untrusted file, and reading the members of a zip archive within the budgets.

Only a regular file is opened (opened without blocking first, so that a FIFO named ``x.xlsx``
cannot hold the run, then checked with ``fstat``, so that what is read is what was checked). The
zip archive's entry count is read from its end record before ``zipfile`` builds an object per
entry; each member read is streamed with a cap on its inflated size and its compression ratio,
never trusting the sizes its header claims; XML that declares a DOCTYPE is refused, so entities
are neither expanded nor fetched by any parser later (no part of a workbook has one).
"""

import os
import stat
import struct
import zipfile

from fastbp.workbook_audit.limits import RATIO_FLOOR, Unreadable

_CHUNK = 1 << 20
_END = b"PK\x05\x06"
_END64_LOCATOR = b"PK\x06\x07"
_END64 = b"PK\x06\x06"
_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)  # what every spreadsheet program writes
_DECLARATIONS = (b"<!DOCTYPE", b"<!ENTITY")


def kind(mode):
    """What a file that is not a regular file is, in words."""
    for test, words in (
        (stat.S_ISDIR, "a directory"),
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    ):
        if test(mode):
            return words
    return "not a regular file"


def open_regular(path):
    """A binary file object on ``path``; Unreadable unless it is a regular file."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise Unreadable("no such file") from None
    except OSError as exc:
        raise Unreadable(f"cannot be read ({exc.strerror})") from None
    if not stat.S_ISREG(mode):
        raise Unreadable(f"{kind(mode)}, not a regular file: skipped")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        raise Unreadable(f"cannot be opened ({exc.strerror})") from None
    mode = os.fstat(fd).st_mode
    if not stat.S_ISREG(mode):  # replaced between the two looks
        os.close(fd)
        raise Unreadable(f"{kind(mode)}, not a regular file: skipped")
    os.set_blocking(fd, True)
    return os.fdopen(fd, "rb")


def is_zip(handle):
    handle.seek(0)
    return handle.read(4) == b"PK\x03\x04"


def open_archive(handle, limits):
    """A ``zipfile.ZipFile`` on ``handle`` once its end record passes the budgets."""
    size = handle.seek(0, os.SEEK_END)
    tail_size = min(size, 65_557)  # the end record, and a comment of at most 65,535 bytes
    handle.seek(size - tail_size)
    tail = handle.read(tail_size)
    at = tail.rfind(_END)
    if at < 0 or len(tail) - at < 22:
        raise Unreadable("a damaged or truncated zip archive (its end record is missing): save it again")
    entries, directory = struct.unpack_from("<HI", tail, at + 10)
    if entries == 0xFFFF or directory == 0xFFFFFFFF:  # zip64: the counts are in the zip64 end record
        locator = at - 20
        if locator >= 0 and tail[locator : locator + 4] == _END64_LOCATOR:
            handle.seek(struct.unpack_from("<Q", tail, locator + 8)[0])
            record = handle.read(56)
            if record[:4] == _END64 and len(record) == 56:
                entries, directory = struct.unpack_from("<QQ", record, 32)
    # Each entry takes at least 46 bytes of the directory: its size bounds the count zipfile will build.
    if entries > limits.members or directory > limits.members * 1_000:
        raise Unreadable(
            f"the zip archive has {entries:,} entries in a directory of {directory:,} bytes "
            f"(budget members: {limits.members:,})"
        )
    try:
        return zipfile.ZipFile(handle)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, OSError, EOFError) as exc:
        raise Unreadable(f"a damaged zip archive ({type(exc).__name__}: {_first_line(exc)})") from None


def check_member(info, limits):
    """Refuse a member that is encrypted, compressed in a way no spreadsheet writes, or declared too big."""
    if info.flag_bits & 0x1:
        raise Unreadable(
            f"{info.filename} is encrypted (a password-protected archive): save the workbook without a password"
        )
    if info.compress_type not in _METHODS:
        raise Unreadable(
            f"{info.filename} is compressed with zip method {info.compress_type} (a workbook uses deflate)"
        )
    _check_size(info, info.file_size, limits)


def _check_size(info, size, limits):
    if size > limits.member_bytes:
        raise Unreadable(
            f"{info.filename} inflates to more than {limits.member_mb:g} MB "
            f"({size:,} bytes; budget member_mb)"
        )
    if size > RATIO_FLOOR and size > limits.ratio * max(info.compress_size, 1):
        ratio = size / max(info.compress_size, 1)
        raise Unreadable(
            f"{info.filename} inflates {ratio:,.0f} times its compressed size "
            f"({info.compress_size:,} to {size:,} bytes; budget ratio: {limits.ratio:g})"
        )


def read_member(archive, name, limits):
    """The bytes of one member, streamed: stops at the first budget crossed, whatever its header says."""
    info = archive.getinfo(name)  # KeyError: no such part
    check_member(info, limits)
    chunks, total, tail = [], 0, b""
    try:
        with archive.open(info) as stream:
            while chunk := stream.read(_CHUNK):
                total += len(chunk)
                _check_size(info, total, limits)
                window = tail + chunk[:16]
                if any(d in chunk or d in window for d in _DECLARATIONS):
                    raise Unreadable(
                        f"{name} declares a DOCTYPE (XML entities are neither expanded nor fetched; "
                        "no part of a workbook has one)"
                    )
                tail = chunk[-16:]
                chunks.append(chunk)
    except (zipfile.BadZipFile, EOFError, OSError, ValueError) as exc:
        raise Unreadable(f"{name} is damaged ({type(exc).__name__}: {_first_line(exc)})") from None
    except Exception as exc:  # zlib.error: a corrupt deflate stream
        if type(exc).__module__ != "zlib":
            raise
        raise Unreadable(f"{name} is damaged (a corrupt deflate stream: {_first_line(exc)})") from None
    data = b"".join(chunks)
    if data[:2] in (b"\xff\xfe", b"\xfe\xff") or data[:4].count(0):
        raise Unreadable(f"{name} is not UTF-8 XML (every spreadsheet program writes UTF-8): save it again")
    return data


def check_all_xml(archive, limits):
    """Stream every XML part through the budgets (before a reader that reads them all, openpyxl)."""
    for info in archive.infolist():
        if info.filename.lower().endswith((".xml", ".rels", ".vml")):
            read_member(archive, info.filename, limits)


def _first_line(exc):
    text = str(exc).splitlines()[0] if str(exc) else ""
    return text if len(text) <= 100 else text[:97] + "..."
