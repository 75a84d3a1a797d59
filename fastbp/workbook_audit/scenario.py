"""What the sheet ran: inputs, targets, biases and the learning rate, read from the sheet itself.

Inputs, targets and biases come from the table's own columns (each row's own values), else from
labelled constant cells (``t1`` with a number beside it, ``lr = 0.5``), else from the values the
exercise's editions use (inputs 0.05, 0.1; targets 0.5, 0.5 or 0.01, 0.99; no biases or the
walk-through's b1 = 0.35, b2 = 0.6) or that row 0 determines (t1 = a_o1 − ∂E/∂a_o1, a bias =
h1 − w1·i1 − w2·i2, kept only when it is a short decimal): whichever candidate makes the fewest
cells of the first two rows wrong; every such assumption is reported as a note.

The learning rate is inferred from the first update, (w − w')/∂E/∂w for every weight, taking the
value most weights agree on (the best-conditioned estimate of that cluster), rounded to the
shortest decimal within its uncertainty; a labelled cell holding that value is named as its
source and used. The rate is then checked at every later row by the update checks themselves.
"""

import itertools
import math
from dataclasses import dataclass, field

from fastbp.workbook_audit import headers
from fastbp.workbook_audit.recompute import replay_row, sigmoid

COURSE_INPUTS = (0.05, 0.1)
EDITION_TARGETS = ((0.5, 0.5), (0.01, 0.99))
WALKTHROUGH_BIASES = (0.35, 0.6)  # b1 (hidden), b2 (output), fixed
UNITS = ("b_h1", "b_h2", "b_o1", "b_o2")
SHARED = {"b_h1": "b1", "b_h2": "b1", "b_o1": "b2", "b_o2": "b2"}


@dataclass
class Scenario:
    constants: dict  # i1 i2 t1 t2 b_h1 … that are not columns of the table: name -> float
    bias_source: dict  # b_h1 … -> the table column holding it (b1, b2, b_h1, …)
    trained: list = field(default_factory=list)  # bias columns whose values change: updated like weights
    notes: list = field(default_factory=list)
    wrong: int = 0  # cells of rows 0 and 1 that it leaves wrong

    def roots(self, row, err):
        """The inputs of one row's replay, ``{name: (value, bound)}``, from the row's numbers."""
        out = {}
        for name in ("i1", "i2", "t1", "t2") + headers.WEIGHTS:
            x = row.get(name)
            if x is not None:
                out[name] = (x, err(name, x))
            elif name in self.constants:
                out[name] = (self.constants[name], 0.0)
            else:
                out[name] = None
        for unit in UNITS:
            column = self.bias_source.get(unit)
            x = row.get(column) if column else None
            if x is not None:
                out[unit] = (x, err(column, x))
            elif column is not None:
                out[unit] = None  # the table has the column but this cell is empty
            else:
                out[unit] = (self.constants.get(unit, 0.0), 0.0)
        return out


def nice(x, digits=6, atol=None):
    """x as the shortest decimal (≤ ``digits`` significant digits) within ``atol`` of it, else None.

    ``atol`` defaults to 1e-9·max(|x|, 1): a value the sheet's author typed (0.35, 0.99).
    """
    if x is None or not math.isfinite(x):
        return None
    if x == 0:
        return 0.0
    atol = 1e-9 * max(abs(x), 1.0) if atol is None else atol
    for d in range(1, digits + 1):
        r = float(f"{x:.{d - 1}e}")
        if abs(r - x) <= atol:
            return r
    return None


def _label(labels, name):
    for label in labels:
        if label.name == name:
            return label
    return None


def resolve(table, rows, labels, err, agrees):
    """The Scenario that best explains rows 0 and 1 of ``rows`` (the table's numbers per step)."""
    cols = table.cols
    base, notes, from_cells = {}, [], {}
    fixed = []  # (names, candidates): each candidate a dict of constants and a note (or None)

    for pair, course in (("i1", "i2"), COURSE_INPUTS), (("t1", "t2"), None):
        given = {}
        for name in pair:
            if name in cols:
                continue
            label = _label(labels, name)
            if label is not None:
                given[name] = label.value
                from_cells[name] = label
        base.update(given)
        open_names = [n for n in pair if n not in cols and n not in given]
        if not open_names:
            continue
        if pair[0] == "i1":
            options = [dict(zip(pair, course))] + _solved(_solved_inputs(rows))
        else:
            options = [dict(zip(pair, t)) for t in EDITION_TARGETS] + _solved(_solved_targets(rows))
        options = [
            {n: o[n] for n in open_names + [SOLVED] if n in o}
            for o in options
            if all(n in o for n in open_names)
        ]
        fixed.append((open_names, _unique(options)))

    bias_source = {}
    for unit in UNITS:
        if unit in cols:
            bias_source[unit] = unit
        elif SHARED[unit] in cols:
            bias_source[unit] = SHARED[unit]
    labelled = {}
    for unit in UNITS:
        if unit in bias_source:
            continue
        label = _label(labels, unit) or _label(labels, SHARED[unit])
        if label is not None:
            labelled[unit] = label.value
            from_cells[label.name if label.name in ("b1", "b2") else unit] = label
    base.update(labelled)
    if from_cells:
        shown = ", ".join(f"{n} = {label.value:g} ({label.ref})" for n, label in from_cells.items())
        notes.append(f"from labelled cells: {shown}" + (" (biases fixed)" if labelled else ""))
    if not bias_source and not labelled:
        options = [{}, dict(zip(UNITS, (*(WALKTHROUGH_BIASES[0],) * 2, *(WALKTHROUGH_BIASES[1],) * 2)))]
        options += _solved(_solved_biases(rows, base))
        fixed.append((list(UNITS), _unique(options)))

    # The editions' values are tried first and win ties; a value solved from row 0 is taken only
    # if it makes rows 0 and 1 right where no edition does (a slip in row 0 solves to nonsense).
    safe, solved = None, None
    for combo in itertools.product(*(opts or [{}] for _, opts in fixed)):
        constants = dict(base)
        for part in combo:
            constants.update({k: v for k, v in part.items() if k != SOLVED})
        scen = Scenario(constants, bias_source)
        wrong = score(scen, rows, err, agrees)
        if any(SOLVED in part for part in combo):
            if wrong == 0 and solved is None:
                solved = (wrong, scen)
        elif safe is None or wrong < safe[0]:
            safe = (wrong, scen)
            if wrong == 0:
                break
    best_score, best = solved if solved is not None and safe[0] > 0 else safe
    for names, opts in fixed:
        chosen = {n: best.constants[n] for n in names if n in best.constants}
        if names == list(UNITS):
            if chosen and any(v != 0 for v in chosen.values()):
                if len(chosen) == 4 and chosen["b_h1"] == chosen["b_h2"] and chosen["b_o1"] == chosen["b_o2"]:
                    chosen = {"b1": chosen["b_h1"], "b2": chosen["b_o1"]}  # the walk-through's shared form
                shown = ", ".join(f"{n} = {v:g}" for n, v in chosen.items())
                notes.append(f"biases not in the sheet: fixed {shown} fit row 0")
        elif len(opts) > 0:
            shown = ", ".join(f"{n} = {v:g}" for n, v in chosen.items())
            notes.append(f"{shown} (not in the sheet: the values that fit row 0)")
    best.notes = notes
    best.trained = _trained(bias_source, rows)
    best.wrong = best_score
    return best


SOLVED = "solved from row 0"


def _solved(options):
    return [{**o, SOLVED: True} for o in options]


def _unique(options):
    seen, out = set(), []
    for o in options:
        key = tuple(sorted(o.items()))
        if key not in seen:
            seen.add(key)
            out.append(o)
    return out


def score(scen, rows, err, agrees):
    """Cells of rows 0 and 1 that this scenario makes wrong (fewer is better)."""
    wrong = 0
    for row in rows[:2]:
        roots = scen.roots(row, err)
        local = replay_row(roots, row, err)
        for name, x in row.items():
            expected = local.get(name)
            if expected is not None and name not in roots and not agrees(x, expected, err(name, x)):
                wrong += 1
    return wrong


def _solved_inputs(rows):
    # h1 = w1·i1 + w2·i2, h2 = w3·i1 + w4·i2 at row 0 (no biases): two equations, two inputs.
    row = rows[0] if rows else {}
    try:
        h1, h2 = row["h1"], row["h2"]
        w1, w2, w3, w4 = (row[f"w{n}"] for n in range(1, 5))
    except KeyError:
        return []
    det = w1 * w4 - w2 * w3
    if det == 0:
        return []
    i1, i2 = nice((h1 * w4 - w2 * h2) / det), nice((w1 * h2 - w3 * h1) / det)
    return [] if i1 is None or i2 is None else [{"i1": i1, "i2": i2}]


def _solved_targets(rows):
    row = rows[0] if rows else {}
    per_output = []
    for n, gradient in ((1, "dE_dw5"), (2, "dE_dw7")):  # δ_o1·a_h1, δ_o2·a_h1
        a = row.get(f"a_o{n}")
        options = []
        if a is not None:
            slope = a * (1.0 - a)
            if f"dE_da_o{n}" in row:
                options.append(a - row[f"dE_da_o{n}"])
            if f"delta_o{n}" in row and slope:
                options.append(a - row[f"delta_o{n}"] / slope)
            g, h = row.get(gradient), row.get("a_h1")
            if g is not None and h and slope:
                options.append(a - g / (slope * h))
            if f"E{n}" in row and row[f"E{n}"] >= 0:
                root = math.sqrt(2.0 * row[f"E{n}"])
                options += [a - root, a + root]
        per_output.append([t for t in (nice(x) for x in options) if t is not None])
    return [{"t1": t1, "t2": t2} for t1 in per_output[0] for t2 in per_output[1]]


def _solved_biases(rows, base):
    # A bias is what is left of h1 once w1·i1 + w2·i2 is taken away (likewise h2, o1, o2).
    row = rows[0] if rows else {}
    i1, i2 = base.get("i1", row.get("i1", COURSE_INPUTS[0])), base.get("i2", row.get("i2", COURSE_INPUTS[1]))
    try:
        w = [row[f"w{n}"] for n in range(1, 9)]
    except KeyError:
        return []
    out = {}
    for unit, net, (wa, wb) in (("b_h1", "h1", (0, 1)), ("b_h2", "h2", (2, 3))):
        if net in row:
            out[unit] = nice(row[net] - (w[wa] * i1 + w[wb] * i2))
    a_h1 = row.get("a_h1", sigmoid(w[0] * i1 + w[1] * i2 + (out.get("b_h1") or 0.0)))
    a_h2 = row.get("a_h2", sigmoid(w[2] * i1 + w[3] * i2 + (out.get("b_h2") or 0.0)))
    for unit, net, (wa, wb) in (("b_o1", "o1", (4, 5)), ("b_o2", "o2", (6, 7))):
        if net in row:
            out[unit] = nice(row[net] - (w[wa] * a_h1 + w[wb] * a_h2))
    if not out or any(v is None for v in out.values()) or not any(out.values()):
        return []
    # Units the table gives no net input for share their layer's bias (the walk-through's form).
    for unit in UNITS:
        partner = {"b_h1": "b_h2", "b_h2": "b_h1", "b_o1": "b_o2", "b_o2": "b_o1"}[unit]
        if unit not in out and partner in out:
            out[unit] = out[partner]
    return [out]


def _trained(bias_source, rows):
    trained = []
    for column in sorted(set(bias_source.values())):
        values = [row.get(column) for row in rows if row.get(column) is not None]
        if values and any(abs(v - values[0]) > 1e-12 * max(abs(values[0]), 1e-300) for v in values[1:]):
            trained.append(column)
    return trained


# --- the learning rate --------------------------------------------------------------------------


@dataclass
class Rate:
    value: float | None  # None: no update to infer it from
    bound: float = 0.0  # how far the true rate may be from value
    source: str = ""  # "inferred from the first update", or the labelled cell
    notes: list = field(default_factory=list)
    sign: float = 1.0  # -1: the first update went uphill (w + lr·g)


def estimate(pairs, err):
    """The rate most of ``pairs`` agree on: (lr, bound, sign) or None.

    pairs: (name, w_before (value, bound), w_after float, gradient (value, bound)).
    """
    estimates = []
    for name, w, after, g in pairs:
        if w is None or g is None or g[0] == 0 or after is None:
            continue
        lr = (w[0] - after) / g[0]
        bound = (w[1] + err(name, after) + abs(lr) * g[1]) / abs(g[0])
        estimates.append((lr, bound))
    if not estimates:
        return None
    best, best_key = None, None
    for lr, bound in sorted(estimates, key=lambda e: e[1] / max(abs(e[0]), 1e-300)):
        agree = sum(1 for x, b in estimates if abs(x - lr) <= 2.0 * (b + bound) + 1e-15 * abs(lr))
        key = (agree, lr > 0)
        if best_key is None or key > best_key:
            best, best_key = (lr, bound), key
    lr, bound = best
    sign = -1.0 if lr < 0 else 1.0
    lr = abs(lr)
    snapped = nice(lr, digits=15, atol=2.0 * bound + 1e-15 * lr)
    if snapped is not None:
        lr = snapped
    return lr, 3.0 * bound, sign


def resolve_rate(pairs, labels, err):
    found = estimate(pairs, err)
    lr_labels = [label for label in labels if label.name == "lr"]
    if found is None:
        if lr_labels:
            label = lr_labels[0]
            return Rate(label.value, err("lr", label.value), f"cell {label.ref}")
        return Rate(None)
    lr, bound, sign = found
    for label in lr_labels:
        if abs(label.value - lr) <= 2.0 * bound + 1e-12 * abs(lr):
            where = label.ref if label.ref.startswith("the sheet") else f"cell {label.ref}"
            return Rate(label.value, err("lr", label.value), where, sign=sign)
    rate = Rate(lr, bound, "inferred from the first update", sign=sign)
    for label in lr_labels:
        where = label.ref if label.ref.startswith("the sheet") else f"cell {label.ref}"
        rate.notes.append(f"{where} says lr = {label.value:g}, but the first update used {lr:.10g}")
    return rate
