"""One step table checked cell by cell: the local replay, the comparison, the first wrong cell.

Every row is replayed from the sheet's own numbers (recompute.replay_row): row k's forward pass,
loss and gradients from row k's weights, inputs, targets and biases; row k's weights from row
k − 1's weights and gradients (w − lr·∂E/∂w, or the new-weight columns of the same row). An
intermediate the sheet has is taken from the sheet, so one wrong cell is reported where it is and
does not make everything after it wrong. A cell is right when its number is within the
propagated bound of the replay from the sheet's numbers (local) or of the replay from the row's
weights alone (the student may have computed a_h1 from the weights rather than from h1):

    |found − expected| ≤ SAFETY · (bound + rtol·|found|)

where ``bound`` is what ``rtol`` of relative error in every number the formula reads becomes
through the formula (recompute.py). See docs/audit.md for why ``rtol`` = 1e-12 by default.
"""

from dataclasses import dataclass, field

from fastbp.workbook_audit import headers, scenario, slips
from fastbp.workbook_audit.recompute import SAFETY, agrees, replay_row, updated
from fastbp.workbook_audit.slips import NOT_FINITE
from fastbp.workbook_audit.workbook import cell_name, not_finite, number, sheet_ref, uncached_phrase

DEFAULT_RTOL = 1e-12
DERIVED = headers.FORWARD + headers.INTERMEDIATE + headers.GRADIENTS + headers.BIAS_GRADIENTS
SPEC_COLUMNS = (
    ("t1", "t2", "i1", "i2")
    + headers.WEIGHTS[:4]
    + ("h1", "a_h1", "h2", "a_h2")
    + headers.WEIGHTS[4:]
    + ("o1", "a_o1", "o2", "a_o2", "E1", "E2", "E_total")
    + headers.GRADIENTS
)
_AMBIGUOUS = ("h1", "h2", "o1", "o2")  # net input in the SPEC, an activation to some students


@dataclass
class Wrong:
    step: int
    name: str
    cell: str
    expected: float | None
    found: object
    kind: str  # derived, update, constant, not finite

    def key(self):
        return (self.step, headers.RANK.get(self.name, 999))


@dataclass
class Outcome:
    table: object
    verdict: str  # ok, wrong, unreadable
    steps: int = 0
    lr: float | None = None
    lr_source: str = ""
    wrong: list = field(default_factory=list)
    checked: int = 0
    missing: list = field(default_factory=list)
    slip: str = ""
    explained: dict = field(default_factory=dict)  # slip -> wrong cells it reproduces
    notes: list = field(default_factory=list)
    message: str = ""

    @property
    def first(self):
        return min(self.wrong, key=Wrong.key) if self.wrong else None


def gradient_of(param):
    return "dE_d" + param


class Check:
    """The state of one table's check; slips.py replays variants against it."""

    def __init__(self, table, labels, rtol):
        # Of several labelled cells of one name (a sheet with two tables), the nearest is this table's.
        labels = sorted(labels, key=lambda label: label.distance(table))
        self.table, self.labels, self.rtol = table, labels, rtol
        self.n = len(table.rows)
        self.rows, self.texts = [], []
        self.not_finite = []  # (step, name, value): wrong in any column, given or computed
        cols = list(table.cols.items())
        for k in range(self.n):
            nums, texts = {}, {}
            for name, _ in cols:
                raw = table.raw(k, name)
                # The common case first: a finite float (x - x is NaN for ±inf and NaN).
                if type(raw) is float and raw - raw == 0.0:  # noqa: E721
                    nums[name] = raw
                    continue
                x = number(raw)
                if x is not None:
                    nums[name] = x
                elif not_finite(raw):  # |inf − inf| ≤ inf would pass any comparison: never read it
                    self.not_finite.append((k, name, raw))
                elif raw is not None and not (isinstance(raw, str) and not raw.strip()):
                    texts[name] = raw
            self.rows.append(nums)
            self.texts.append(texts)
        self._local, self._chain = {}, {}

    def err(self, name, x):
        return self.rtol * abs(x)

    # --- replays, cached per row ------------------------------------------------------------------
    def roots(self, k, err=None):
        return self.scen.roots(self.rows[k], err or self.err)

    def local(self, k):
        if k not in self._local:
            self._local[k] = replay_row(self.roots(k), self.rows[k], self.err)
        return self._local[k]

    def chain(self, k):
        if k not in self._chain:
            self._chain[k] = replay_row(self.roots(k), None, self.err)
        return self._chain[k]

    def used_gradient(self, k, param, local=None):
        """The ∂E/∂param of row k that the update used: the sheet's, else the replay's."""
        name = gradient_of(param)
        x = self.rows[k].get(name)
        if x is not None:
            return (x, self.err(name, x))
        return (local or self.local(k)).get(name)

    def params(self):
        """What the update trains: the weights the table has, and the bias columns that change."""
        return [w for w in headers.WEIGHTS if w in self.table.cols] + list(self.scen.trained)

    def updates(self):
        """(step, target name, before-row, param): every update cell of the table."""
        out = []
        for p in self.params():
            for k in range(1, self.n):
                out.append((k, p, k - 1, p))
            nxt = f"{p}_next"
            if nxt in self.table.cols:
                out += [(k, nxt, k, p) for k in range(self.n)]
        return out

    def lr_at(self, k):
        """The rate of the update from row k: a per-row lr column if the table has one."""
        x = self.rows[k].get("lr")
        if x is not None:
            return (x, self.err("lr", x))
        return (self.rate.value, self.rate.bound)

    # --- the check ----------------------------------------------------------------------------------
    def run(self):
        table = self.table
        out = Outcome(table, "ok", steps=self.n)
        uncached = table.uncached_cells()
        if uncached:
            r, c = uncached[0]
            out.verdict = "unreadable"
            out.message = (
                f"{uncached_phrase(len(uncached))} no saved value (first {cell_name(r, c)}): "
                "open the file in Excel, LibreOffice or Google Sheets, save it, and audit it again"
            )
            return out
        if self.n == 0:
            out.verdict = "unreadable"
            out.message = f"the header at {table.header_cell} has no rows of numbers under it"
            return out
        self._resolve()
        out.lr, out.lr_source = self.rate.value, self.rate.source
        out.notes = self.scen.notes + self.rate.notes
        out.missing = [c for c in SPEC_COLUMNS if c not in table.cols and c not in self.scen.constants]
        if self.n == 1 and not any(n in table.cols for n in DERIVED):
            out.notes.append("one row and nothing computed in it: nothing to check")
        self.wrong = [Wrong(k, n, table.cell(k, n), None, raw, NOT_FINITE) for k, n, raw in self.not_finite]
        self.checked = len(self.wrong)
        self._check_derived()
        self._check_constants()
        self._check_updates()
        out.wrong, out.checked = self.wrong, self.checked
        if self.not_finite:
            k, name, raw = self.not_finite[0]
            out.message = (
                f"{sheet_ref(table.sheet.name, table.cell(k, name))} holds {raw!r}: not a finite number"
            )
        if table.runs_past_limit():
            limit = table.sheet.column_limit if table.transposed else table.sheet.row_limit
            unit = "column" if table.transposed else "row"
            cut = (
                f"{self.n} steps checked; the table goes on past {unit} {limit:,}, the last one read "
                f"(budget {unit}s): the steps after it were not read or checked"
            )
            out.notes.append(cut)
            if not self.wrong:
                out.verdict, out.message = "incomplete", cut
        if self.wrong:
            out.verdict = "wrong"
            out.slip = slips.name(self)
            out.explained = self.explained
            if len(self.wrong) > slips.EXAMINED:
                out.notes.append(
                    f"the slip is judged on the first {slips.EXAMINED} of {len(self.wrong)} wrong cells"
                )
        return out

    def _resolve(self):
        table = self.table
        options = [{}]
        ambiguous = {u: f"a_{u}" for u in _AMBIGUOUS if u in table.cols and f"a_{u}" not in table.cols}
        if ambiguous:
            options.append(ambiguous)
        # Weights numbered by input first (w2 = i1 → h2, w3 = i2 → h1; likewise w6, w7): some
        # editions do. Tried after the SPEC's numbering, kept only if it explains rows 0 and 1 better.
        for swaps in ([("w2", "w3")], [("w6", "w7")], [("w2", "w3"), ("w6", "w7")]):
            if all(a in table.cols and b in table.cols for a, b in swaps):
                options.append(_swapped(swaps, table.cols))
        # Scored within the table's own rounding, so that a rounded table's scenario is found too.
        err = slips.rounding_err(self)
        best = None
        for rename in options:
            rows = [{rename.get(n, n): x for n, x in row.items()} for row in self.rows]
            scen = scenario.resolve(_Renamed(table, rename), rows, self.labels, err, agrees)
            if best is None:
                best = (rename, rows, scen)
            elif scen.wrong == 0 and best[2].wrong > 0:  # another reading only if it makes rows 0-1 right
                best = (rename, rows, scen)
                break
        rename, self.rows, self.scen = best
        self.__dict__.pop("_rounding", None)  # judged on the names before renaming
        if rename:
            self.texts = [{rename.get(n, n): x for n, x in t.items()} for t in self.texts]
            table.cols = {rename.get(n, n): c for n, c in table.cols.items()}
            table.texts = {rename.get(n, n): t for n, t in table.texts.items()}
            if any(n.startswith("a_") for n in rename.values()):
                shown = ", ".join(f"{table.texts[a]!r} as {a}" for a in rename.values())
                self.scen.notes.append(f"read {shown} (its values are σ of the net input)")
            else:
                pairs = sorted({tuple(sorted((a, b))) for a, b in rename.items() if a in headers.WEIGHTS})
                shown = ", ".join(f"{a} as {b} and {b} as {a}" for a, b in pairs)
                self.scen.notes.append(
                    f"weights numbered by input first: read {shown} (the SPEC's numbering)"
                )
        # A table of rounded numbers says less about its rate: estimate it within that rounding.
        err = slips.rounding_err(self)
        pairs = []
        for p in self.params():
            after = self.rows[1].get(p) if self.n > 1 else self.rows[0].get(f"{p}_next")
            before, g = self.rows[0].get(p), self.rows[0].get(gradient_of(p))
            before = None if before is None else (before, err(p, before))
            g = self.used_gradient(0, p) if g is None else (g, err(gradient_of(p), g))
            pairs.append((p, before, after, g))
        self.rate = scenario.resolve_rate(pairs, self.labels, err)

    def _found(self, k, name):
        """(number or None, text or None) of a cell."""
        return self.rows[k].get(name), self.texts[k].get(name)

    def _judge(self, k, name, kind, expected, other=None):
        """Check one cell against ``expected``, else against ``other()`` (computed only if needed)."""
        row = self.rows[k]
        x = row.get(name)
        text = None if x is not None else self.texts[k].get(name)
        if x is None and text is None:
            return  # an empty cell: nothing to check
        if expected is None and other is not None:
            expected, other = other(), None
        if expected is None:
            return
        self.checked += 1
        if x is not None:
            bound = self.rtol * abs(x)
            if abs(x - expected[0]) <= SAFETY * (expected[1] + bound):
                return
            if other is not None:
                e = other()
                if e is not None and abs(x - e[0]) <= SAFETY * (e[1] + bound):
                    return
        self.wrong.append(
            Wrong(k, name, self.table.cell(k, name), expected[0], x if x is not None else text, kind)
        )

    def _check_derived(self):
        present = [n for n in DERIVED if n in self.table.cols]
        rtol = self.rtol
        for k in range(self.n):
            local, row = self.local(k), self.rows[k]
            for name in present:
                # Inline of _judge for the common case (a number within the local replay's bound):
                # this loop runs once per computed cell of every table.
                x, e = row.get(name), local.get(name)
                if x is not None and e is not None and abs(x - e[0]) <= SAFETY * (e[1] + rtol * abs(x)):
                    self.checked += 1
                    continue
                self._judge(k, name, "derived", e, lambda k=k, name=name: self.chain(k).get(name))

    def _check_constants(self):
        cols = self.table.cols
        constant = [n for n in ("i1", "i2", "t1", "t2") if n in cols]
        constant += [c for c in set(self.scen.bias_source.values()) if c not in self.scen.trained]
        for name in constant:
            first = self.rows[0].get(name)
            if first is None:
                continue
            for k in range(1, self.n):
                self._judge(k, name, "constant", (first, self.err(name, first)))
        if "lr" in cols and self.rate.value is not None:
            for k in range(self.n):
                self._judge(k, "lr", "constant", (self.rate.value, self.rate.bound))

    def _check_updates(self):
        if self.rate.value is None:
            return
        for k, target, before, param in self.updates():
            w = self.rows[before].get(param)
            if w is None:
                continue
            w = (w, self.err(param, w))
            if self.rate.value == 0:
                self._not_updated(k, target, w, self.used_gradient(before, param))
                continue
            lr = self.lr_at(before)
            self._judge(
                k,
                target,
                "update",
                updated(w, self.used_gradient(before, param), lr),
                lambda w=w, before=before, param=param, lr=lr: updated(
                    w, self.chain(before).get(gradient_of(param)), lr
                ),
            )

    def _not_updated(self, k, target, w, g):
        # No rate > 0 to compare with: a weight that stays put while its gradient is not zero is wrong.
        x, text = self._found(k, target)
        if x is None and text is None:
            return
        self.checked += 1
        if (
            g is not None
            and g[0] != 0
            and (x is None or abs(x - w[0]) <= SAFETY * (w[1] + self.err(target, x)))
        ):
            self.wrong.append(
                Wrong(k, target, self.table.cell(k, target), None, x if x is not None else text, "update")
            )

    def ref(self, wrong):
        return sheet_ref(self.table.sheet.name, wrong.cell)


def _swapped(swaps, cols):
    """The renaming that swaps weights (and their gradients and new-weight columns) pairwise."""
    rename = {}
    for a, b in swaps:
        for fa, fb in ((a, b), (f"dE_d{a}", f"dE_d{b}"), (f"{a}_next", f"{b}_next")):
            if fa in cols or fb in cols:
                rename[fa], rename[fb] = fb, fa
    return rename


class _Renamed:
    """A table seen through a renaming of its columns (for the scenario's view of it)."""

    def __init__(self, table, rename):
        self.cols = {rename.get(n, n): c for n, c in table.cols.items()}


def check_table(table, labels, rtol=DEFAULT_RTOL):
    return Check(table, labels, rtol).run()
