"""Is a dataset complete and sound? Checked from the shards' footers, never trusted by name.

A shard counts only when its Parquet footer reads, it holds exactly the runs its number says
(row count, and the ``run`` column's min and max from the footer statistics), and its metadata
names the dataset's own spec (the canonical form: a shard of another spec is never accepted,
also on stores where no lock keeps two writers apart). Reading a footer costs one small read per
file, not a read of the data.

``check_dataset`` reports what a dataset is: complete, incomplete (which run ranges are
missing) or damaged (which files, and why). Resume (``storage.Dataset``), ``fastbp check`` and
every reader (``fastbp.reading``) use it.
"""

import json
from dataclasses import dataclass, field

from fastbp import contract, files
from fastbp.contract import SHARD_NAME
from fastbp.spec import canonical_json

_RUN = contract.COLUMN_NAMES.index("run")


@dataclass
class Report:
    """What ``check_dataset`` found. ``complete``: every run present, every file sound.

    Sized by the files present, never by the grid's counts: a grid of a million shards with
    three files present holds three shard numbers."""

    path: str
    n_runs: int
    n_shards: int
    shard_size: int
    sound: list = field(default_factory=list)  # shard numbers whose files passed
    damaged: list = field(default_factory=list)  # (file name, why)
    extra: list = field(default_factory=list)  # part files beyond the grid
    n_missing: int = 0  # shard numbers with no file
    grid_known: bool = True  # False: neither the manifest nor any shard's metadata gave a grid

    @property
    def complete(self):
        return self.grid_known and not self.n_missing and not self.damaged and not self.extra

    @property
    def runs_present(self):
        return sum(self.shard_runs(s)[1] - self.shard_runs(s)[0] for s in self.sound)

    def shard_runs(self, shard):
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.n_runs)

    def missing_ranges(self):
        """Runs not in any sound shard (missing, damaged), as (first, last) inclusive ranges."""
        ranges, next_shard = [], 0
        for shard in sorted(self.sound) + [self.n_shards]:
            if shard > next_shard:
                ranges.append((self.shard_runs(next_shard)[0], self.shard_runs(shard - 1)[1] - 1))
            next_shard = shard + 1
        return ranges

    def summary(self):
        """One line: what the dataset is."""
        if self.complete:
            return f"complete: {self.n_runs:,} runs in {self.n_shards} shards, every shard sound"
        parts = (
            []
            if self.grid_known
            else ["its grid is unknown (no sound manifest, no shard's metadata gives one)"]
        )
        ranges = self.missing_ranges()
        if ranges:
            shown = ", ".join(f"{a:,}–{b:,}" if a != b else f"{a:,}" for a, b in ranges[:5])
            more = f" and {len(ranges) - 5} more ranges" if len(ranges) > 5 else ""
            parts.append(
                f"{self.n_runs - self.runs_present:,} of {self.n_runs:,} runs missing (runs {shown}{more})"
            )
        if self.damaged:
            shown = "; ".join(f"{name}: {why}" for name, why in self.damaged[:3])
            more = f"; and {len(self.damaged) - 3} more" if len(self.damaged) > 3 else ""
            parts.append(f"{len(self.damaged)} damaged file(s) ({shown}{more})")
        if self.extra:
            parts.append(f"{len(self.extra)} file(s) beyond the grid ({', '.join(self.extra[:3])})")
        state = "damaged" if self.damaged or self.extra or not self.grid_known else "incomplete"
        return f"{state}: " + "; ".join(parts)


class Damaged(ValueError):
    """Why a file of a dataset cannot be used, in a few words (printed after the file's name)."""


def shard_number(name):
    """N for ``part-NNNNNN.parquet``, else None."""
    if name.startswith("part-") and name.endswith(".parquet"):
        digits = name[len("part-") : -len(".parquet")]
        if digits.isdigit():
            return int(digits)
    return None


def open_input(filesystem, path, info=None):
    """A readable file of ``filesystem`` at ``path``; on a local disk only a regular file is
    opened (``files.open_regular``: a FIFO under a shard's name would block the reader), and
    elsewhere only what the listing (``info``, a ``FileInfo``) says is a file."""
    import pyarrow.fs as pafs

    if isinstance(filesystem, pafs.LocalFileSystem):
        return files.open_regular(path)
    if info is not None and info.type != pafs.FileType.File:
        raise files.NotRegularFile(path, f"not a regular file ({info.type.name})")
    return filesystem.open_input_file(path)


def read_bounded(filesystem, path, limit):
    """The bytes of the file at ``path``, at most ``limit`` of them (``Damaged`` past that)."""
    import pyarrow.fs as pafs

    try:
        if isinstance(filesystem, pafs.LocalFileSystem):
            return files.read_regular(path, limit)
        with filesystem.open_input_stream(path) as handle:
            data = handle.read(limit + 1)
    except files.NotRegularFile as exc:
        raise Damaged(exc.strerror) from None
    except OSError as exc:
        raise Damaged(f"unreadable ({type(exc).__name__}: {exc.strerror or exc})") from None
    if len(data) > limit:
        raise Damaged(f"larger than {limit:,} bytes")
    return data


def footer_block(filesystem, path, info=None):
    """(Parquet footer, its ``fastbp`` metadata block as a dict) of the file at ``path``, or
    ``Damaged``. Reading a footer costs one small read, bounded by the file's size."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with open_input(filesystem, path, info) as handle:
            footer = pq.ParquetFile(handle).metadata
    except files.NotRegularFile as exc:
        raise Damaged(exc.strerror) from None
    except (OSError, ValueError, pa.ArrowException) as exc:
        raise Damaged(
            f"unreadable Parquet footer ({type(exc).__name__}: {(str(exc).splitlines() or [''])[0][:120]})"
        ) from None
    block = (footer.metadata or {}).get(contract.METADATA_KEY)
    if block is None:
        raise Damaged("no fastbp metadata")
    try:
        block = json.loads(block)
    except (ValueError, RecursionError):
        raise Damaged("fastbp metadata is not JSON") from None
    if (
        not isinstance(block, dict)
        or block.get("format") != contract.FORMAT
        or block.get("schema_version") not in contract.READABLE_VERSIONS
    ):
        raise Damaged(f"not a {contract.FORMAT} shard of a schema version this fastbp reads")
    return footer, block


def shard_problem(filesystem, path, spec_json, start, stop, info=None):
    """Why the file at ``path`` (listed as ``info``, if given) is not a sound shard of runs
    [start, stop) of the spec whose canonical JSON is ``spec_json``, or None when it is."""
    try:
        footer, block = footer_block(filesystem, path, info)
    except Damaged as exc:
        return str(exc)
    if canonical_json(block.get("spec")) != spec_json:
        return "a shard of another spec"
    if footer.num_rows != stop - start:
        return f"{footer.num_rows:,} rows where runs {start:,}–{stop - 1:,} are {stop - start:,}"
    low, high = _run_range(footer)
    if (low, high) != (start, stop - 1):
        return f"holds runs {low}–{high} where runs {start:,}–{stop - 1:,} belong"
    return None


def _run_range(footer):
    """(min, max) of the ``run`` column from the footer's statistics; (None, None) without them."""
    column = _RUN
    if footer.num_columns <= column or footer.schema.column(column).name != "run":
        return None, None
    lows, highs = [], []
    for group in range(footer.num_row_groups):
        stats = footer.row_group(group).column(column).statistics
        if stats is None or not stats.has_min_max:
            return None, None
        lows.append(stats.min)
        highs.append(stats.max)
    return (min(lows), max(highs)) if lows else (None, None)


#: Keys of a manifest whose values size the check: each is checked before it is used.
_COUNTS = ("n_runs", "shard_size", "n_shards")


def checked_manifest(manifest):
    """``manifest`` (as read from JSON) once its counts are integers that agree with its spec,
    and its grid has at most ``spec.MAX_SHARDS`` shards; else ``Damaged`` says why."""
    from fastbp.errors import DatasetError

    if not isinstance(manifest, dict):
        raise Damaged(f"not a JSON object (a {_json_kind(manifest)})")
    try:
        contract.check_format(manifest, "dataset", "", what="manifest")
    except DatasetError as exc:
        raise Damaged(f"not {exc.allowed}") from None
    for key in ("spec", *_COUNTS):
        if key not in manifest:
            raise Damaged(f"no '{key}'")
    for key in _COUNTS:
        value = manifest[key]
        if isinstance(value, bool) or not isinstance(value, int):
            raise Damaged(f"'{key}' is a {_json_kind(value)} ({_short(value)}), not an integer")
    spec = spec_of(manifest["spec"])
    n_runs, shard_size, n_shards = (manifest[key] for key in _COUNTS)
    if n_runs != spec.n_runs:
        raise Damaged(f"'n_runs' is {n_runs:,} where its spec has {spec.n_runs:,} runs")
    if shard_size < 1:
        raise Damaged(f"'shard_size' is {shard_size:,}, not >= 1")
    check_grid_size(spec, shard_size)
    if n_shards != spec.n_shards(shard_size):
        raise Damaged(
            f"'n_shards' is {n_shards:,} where {n_runs:,} runs in shards of {shard_size:,} "
            f"make {spec.n_shards(shard_size):,}"
        )
    return manifest


def spec_of(spec_dict):
    """The ``SweepSpec`` of a spec read from a dataset's file, or ``Damaged``."""
    from fastbp.errors import SpecError
    from fastbp.spec import parse_spec

    try:
        return parse_spec(spec_dict)
    except (SpecError, TypeError, ValueError, KeyError, AttributeError, IndexError, RecursionError) as exc:
        raise Damaged(f"its spec is refused ({type(exc).__name__}: {str(exc)[:200]})") from None


def check_grid_size(spec, shard_size):
    """``Damaged`` unless ``spec``'s grid at ``shard_size`` fits in the shards a dataset can name."""
    from fastbp.spec import MAX_SHARDS

    n_shards = spec.n_shards(shard_size)
    if n_shards > MAX_SHARDS:
        raise Damaged(
            f"its spec's {spec.n_runs:,} runs in shards of {shard_size:,} make {n_shards:,} shards, "
            f"more than a dataset holds ({MAX_SHARDS:,})"
        )


def _json_kind(value):
    names = {dict: "JSON object", list: "list", str: "string", bool: "boolean", float: "number"}
    return "null" if value is None else names.get(type(value), type(value).__name__)


def _short(value):
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_dataset(filesystem, path, manifest, problems=(), entries=None):
    """A ``Report`` on the dataset at ``path`` whose manifest (or grid from its shards' metadata)
    is ``manifest``, already checked (``checked_manifest``). ``problems``: (file, why) found
    before, e.g. a damaged manifest. ``manifest`` None: no grid is known, only ``problems``.
    ``entries``: the directory's listing, when already made."""
    import pyarrow.fs as pafs

    if manifest is None:
        return Report(path, 0, 0, 1, damaged=list(problems), grid_known=False)
    n_runs, shard_size, n_shards = manifest["n_runs"], manifest["shard_size"], manifest["n_shards"]
    report = Report(path, n_runs, n_shards, shard_size, damaged=list(problems))
    spec_json = canonical_json(manifest["spec"])
    present = {}
    if entries is None:
        entries = filesystem.get_file_info(pafs.FileSelector(path, recursive=False))
    for info in entries:
        shard = shard_number(info.base_name)
        if shard is None:
            continue
        if shard >= n_shards or info.base_name != SHARD_NAME.format(shard):
            report.extra.append(info.base_name)
        else:
            present[shard] = info
    for shard, info in sorted(present.items()):
        start, stop = report.shard_runs(shard)
        why = shard_problem(filesystem, info.path, spec_json, start, stop, info)
        if why is None:
            report.sound.append(shard)
        else:
            report.damaged.append((SHARD_NAME.format(shard), why))
    report.n_missing = n_shards - len(present)
    return report
