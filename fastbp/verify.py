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

from fastbp import contract
from fastbp.contract import SHARD_NAME
from fastbp.spec import canonical_json

_RUN = contract.COLUMN_NAMES.index("run")


@dataclass
class Report:
    """What ``check_dataset`` found. ``complete``: every run present, every file sound."""

    path: str
    n_runs: int
    n_shards: int
    shard_size: int
    sound: list = field(default_factory=list)  # shard numbers whose files passed
    missing: list = field(default_factory=list)  # shard numbers with no file
    damaged: list = field(default_factory=list)  # (file name, why)
    extra: list = field(default_factory=list)  # part files beyond the grid

    @property
    def complete(self):
        return not self.missing and not self.damaged and not self.extra

    @property
    def runs_present(self):
        return sum(self.shard_runs(s)[1] - self.shard_runs(s)[0] for s in self.sound)

    def shard_runs(self, shard):
        start = shard * self.shard_size
        return start, min(start + self.shard_size, self.n_runs)

    def missing_ranges(self):
        """Runs not in any sound shard, as (first, last) inclusive ranges, merged."""
        bad = sorted(set(self.missing) | {s for s in self._damaged_shards()})
        ranges = []
        for shard in bad:
            start, stop = self.shard_runs(shard)
            if ranges and ranges[-1][1] + 1 == start:
                ranges[-1] = (ranges[-1][0], stop - 1)
            else:
                ranges.append((start, stop - 1))
        return ranges

    def _damaged_shards(self):
        for name, _why in self.damaged:
            shard = shard_number(name)
            if shard is not None and shard < self.n_shards:
                yield shard

    def summary(self):
        """One line: what the dataset is."""
        if self.complete:
            return f"complete: {self.n_runs:,} runs in {self.n_shards} shards, every shard sound"
        parts = []
        if self.missing or self.damaged:
            ranges = self.missing_ranges()
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
        state = "damaged" if self.damaged or self.extra else "incomplete"
        return f"{state}: " + "; ".join(parts)


def shard_number(name):
    """N for ``part-NNNNNN.parquet``, else None."""
    if name.startswith("part-") and name.endswith(".parquet"):
        digits = name[len("part-") : -len(".parquet")]
        if digits.isdigit():
            return int(digits)
    return None


def shard_problem(filesystem, path, spec_json, start, stop):
    """Why the file at ``path`` is not a sound shard of runs [start, stop) of the spec whose
    canonical JSON is ``spec_json``, or None when it is."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    try:
        with filesystem.open_input_file(path) as handle:
            footer = pq.ParquetFile(handle).metadata
    except (OSError, ValueError, pa.ArrowException) as exc:
        return f"unreadable Parquet footer ({type(exc).__name__}: {str(exc).splitlines()[0][:120]})"
    block = (footer.metadata or {}).get(contract.METADATA_KEY)
    if block is None:
        return "no fastbp metadata"
    try:
        block = json.loads(block)
    except ValueError:
        return "fastbp metadata is not JSON"
    if (
        block.get("format") != contract.FORMAT
        or block.get("schema_version") not in contract.READABLE_VERSIONS
    ):
        return f"not a {contract.FORMAT} shard of a schema version this fastbp reads"
    if canonical_json(block.get("spec")) != spec_json:
        return "a shard of another spec"
    if footer.num_rows != stop - start:
        return f"{footer.num_rows:,} rows where runs {start:,}–{stop - 1:,} are {stop - start:,}"
    low, high = _run_range(footer)
    if (low, high) != (start, stop - 1):
        return f"holds runs {low}–{high} where runs {start:,}–{stop - 1:,} belong"
    return None


def _run_range(footer):
    lows, highs = [], []
    for group in range(footer.num_row_groups):
        stats = footer.row_group(group).column(_RUN).statistics
        if stats is None or not stats.has_min_max:
            return None, None
        lows.append(stats.min)
        highs.append(stats.max)
    return (min(lows), max(highs)) if lows else (None, None)


def check_dataset(filesystem, path, manifest):
    """A ``Report`` on the dataset at ``path`` whose manifest is ``manifest``."""
    import pyarrow.fs as pafs

    n_runs, shard_size, n_shards = manifest["n_runs"], manifest["shard_size"], manifest["n_shards"]
    report = Report(path, n_runs, n_shards, shard_size)
    spec_json = canonical_json(manifest["spec"])
    present = {}
    for info in filesystem.get_file_info(pafs.FileSelector(path, recursive=False)):
        shard = shard_number(info.base_name)
        if shard is None:
            continue
        if shard >= n_shards or info.base_name != SHARD_NAME.format(shard):
            report.extra.append(info.base_name)
        else:
            present[shard] = info.path
    for shard, file_path in sorted(present.items()):
        start, stop = report.shard_runs(shard)
        why = shard_problem(filesystem, file_path, spec_json, start, stop)
        if why is None:
            report.sound.append(shard)
        else:
            report.damaged.append((SHARD_NAME.format(shard), why))
    # Enumerating shard numbers is bounded: spec.MAX_SHARDS caps a grid's shards.
    report.missing = [s for s in range(n_shards) if s not in present]
    return report
