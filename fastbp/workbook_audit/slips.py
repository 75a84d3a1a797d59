"""Naming the slip: which known mistake, replayed, gives the wrong cells' values.

Each slip is replayed on the rows where wrong cells are and claims the wrong cells whose found
value it reproduces (within the same tolerance as the check). A slip is named when it claims at
least one; slips are tried in the order below, each on the cells the earlier ones left, and any
cell none of them reproduces adds ``unexplained``: "a_h1_for_a_h2" alone means the trap explains
every wrong cell; "missing_half+unexplained" means something else is wrong as well. The names
are listed in this order (rounded_values first), not by how many cells each explains.

- rounded_values: cells whose numbers were pasted rounded (≤ 12 significant digits or fixed
  decimals in their column) and are right to that precision.
- a_h1_for_a_h2: σ'(h2) taken as a_h1(1 − a_h1) in ∂E/∂w3, ∂E/∂w4 (the published trap);
  a_h2_for_a_h1 is its mirror image (∂E/∂w1, ∂E/∂w2 with a_h2).
- updated_output_weights: ∂E/∂a_h1, ∂E/∂a_h2 (so ∂E/∂w1…w4) from the already updated w5…w8
  (the next row's, or an empty row's zeros on the last row).
- missing_half: E1, E2 as (t − a)² (and gradients twice the SPEC's, when they follow that loss).
- wrong_sign: an update w + lr·∂E/∂w.
- lr_changes: a row whose weights are all updated with one other rate (an lr cell that changes,
  a relative reference to the rate that slides down the sheet).
- not_updated: the weights never change.
- wrong_row: a cell equal to what another row (within 5, or the first) gives: a formula that
  refers to the wrong previous row.
"""

from fastbp.workbook_audit.recompute import agrees, replay_row, updated

VARIANTS = ("a_h1_for_a_h2", "a_h2_for_a_h1", "updated_output_weights", "missing_half")
# rounded_values first: a number rounded to a few digits fits another rate, or a variant's value
# (a gradient rounded to 0), by chance; where no column is rounded it claims nothing.
PRIORITY = ("rounded_values",) + VARIANTS + ("not_updated", "wrong_sign", "lr_changes", "wrong_row")
NAMES = ("not_finite",) + PRIORITY + ("unexplained",)
NOT_FINITE = "not finite"  # the kind of a wrong cell holding ±inf or NaN: no slip makes one
WINDOW = 5
EXAMINED = 300
ROUNDED_DIGITS = 12  # a column whose numbers have at most this many significant digits was rounded
SAMPLE = 60  # numbers of a column looked at to tell whether it was rounded


def name(check):
    """The slip name for a check's wrong cells (also sets ``check.explained``: slip -> cells).

    Judged on the first EXAMINED wrong cells (in row order): a sheet wrong everywhere (weights
    numbered another way) would otherwise cost seconds to explain and is unexplained anyway.
    """
    left = sorted(check.wrong, key=lambda w: w.key())[:EXAMINED]
    names, check.explained = [], {}
    not_finite = [w for w in left if w.kind == NOT_FINITE]
    if not_finite:
        names.append("not_finite")
        check.explained["not_finite"] = len(not_finite)
        left = [w for w in left if w.kind != NOT_FINITE]
    for slip in PRIORITY:
        if not left:
            break
        claimed = _EXPLAIN[slip](check, left)
        if claimed:
            names.append(slip)
            check.explained[slip] = len(claimed)
            left = [w for w in left if id(w) not in claimed]
    if left:
        names.append("unexplained")
        check.explained["unexplained"] = len(left)
    return "+".join(names)


def _agrees(check, x, expected, err=None):

    if expected is None or not isinstance(x, float):
        return False
    return agrees(x, expected, (err or check.err)(None, x))


def _update_source(check, w):
    """(param, before-row) of an update cell."""
    param = w.name[: -len("_next")] if w.name.endswith("_next") else w.name
    before = w.step if w.name.endswith("_next") else w.step - 1
    return param, before


def _variant_replays(check, slip, k, cache):
    key = (slip, k)
    if key not in cache:
        roots, row = check.roots(k), check.rows[k]
        outs = []
        for next_out in _next_outputs(check, k) if slip == "updated_output_weights" else [None]:
            outs.append(replay_row(roots, row, check.err, slip, next_out))
            outs.append(replay_row(roots, None, check.err, slip, next_out))
        cache[key] = outs
    return cache[key]


def _next_outputs(check, k):
    names = ("w5", "w6", "w7", "w8")
    options = []
    if k + 1 < check.n and all(n in check.rows[k + 1] for n in names):
        options.append(tuple((check.rows[k + 1][n], check.err(n, check.rows[k + 1][n])) for n in names))
    if all(f"{n}_next" in check.rows[k] for n in names):
        options.append(tuple((check.rows[k][f"{n}_next"], 0.0) for n in names))
    if check.rate.value is not None:
        roots = check.roots(k)
        computed = tuple(updated(roots[n], check.used_gradient(k, n), check.lr_at(k)) for n in names)
        if all(c is not None for c in computed):
            options.append(computed)
    if k == check.n - 1:
        options.append(((0.0, 0.0),) * 4)  # the last row's formulas point into an empty row
    return options


_HIDDEN_1 = ("da_h1_dh1", "delta_h1", "dE_dw1", "dE_dw2", "dE_db_h1", "dE_db1", "w1", "w2", "b_h1", "b1")
_HIDDEN_2 = ("da_h2_dh2", "delta_h2", "dE_dw3", "dE_dw4", "dE_db_h2", "dE_db1", "w3", "w4", "b_h2", "b1")
# The cells (and, through the update, the parameters) each variant changes: no other cell is
# replayed for it.
AFFECTS = {
    "a_h1_for_a_h2": set(_HIDDEN_2),
    "a_h2_for_a_h1": set(_HIDDEN_1),
    "updated_output_weights": {"dE_da_h1", "dE_da_h2"} | set(_HIDDEN_1) | set(_HIDDEN_2),
    "missing_half": None,  # E1, E2, E_total, and every gradient (twice the SPEC's)
}


def _variant(slip):
    affects = AFFECTS[slip]

    def explain(check, wrong):
        cache, claimed = {}, set()
        for w in wrong:
            if affects is not None and w.name.removesuffix("_next") not in affects:
                continue
            if w.kind == "derived":
                replays = _variant_replays(check, slip, w.step, cache)
                if any(_agrees(check, w.found, r.get(w.name)) for r in replays):
                    claimed.add(id(w))
            elif w.kind == "update" and check.rate.value:
                param, before = _update_source(check, w)
                if "dE_d" + param in check.rows[before]:
                    continue  # the update used the sheet's own gradient: not this slip
                w_before = check.rows[before].get(param)
                for r in _variant_replays(check, slip, before, cache):
                    g = r.get("dE_d" + param)
                    e = updated((w_before, check.err(param, w_before)), g, check.lr_at(before))
                    if _agrees(check, w.found, e):
                        claimed.add(id(w))
                        break
        return claimed

    return explain


def _wrong_sign(check, wrong):
    claimed = set()
    for w in wrong:
        if w.kind != "update" or not check.rate.value:
            continue
        param, before = _update_source(check, w)
        w_before = check.rows[before].get(param)
        prev = (w_before, check.err(param, w_before))
        g = check.used_gradient(before, param)
        if _agrees(check, w.found, updated(prev, g, check.lr_at(before), sign=-1.0)):
            claimed.add(id(w))
    return claimed


def _lr_changes(check, wrong):
    from fastbp.workbook_audit.scenario import estimate

    claimed, by_row, fits = set(), {}, {}
    for w in wrong:
        if w.kind == "constant" and w.name == "lr":
            claimed.add(id(w))
        elif w.kind == "update" and isinstance(w.found, float):
            by_row.setdefault(_update_source(check, w)[1], []).append(w)
    for before, cells in by_row.items():
        if len(cells) < 2:
            continue  # one weight off is a typo, not a rate
        pairs = []
        for w in cells:
            param = _update_source(check, w)[0]
            x = check.rows[before].get(param)
            pairs.append((param, (x, check.err(param, x)), w.found, check.used_gradient(before, param)))
        found = estimate(pairs, check.err)
        if found is None:
            continue
        lr, bound, sign = found
        rate = (lr * sign, bound)
        if all(_agrees(check, w.found, updated(prev, g, rate)) for w, (_, prev, _, g) in zip(cells, pairs)):
            fits[before] = (lr <= 2.0 * bound, cells)  # every wrong weight of the row: one other rate
    for before, (zero, cells) in fits.items():
        # One row that did not move is a copy of the row above (wrong_row), not a new rate.
        if not zero or fits.get(before - 1, (False,))[0] or fits.get(before + 1, (False,))[0]:
            claimed.update(id(w) for w in cells)
    return claimed


def _not_updated(check, wrong):
    return {id(w) for w in wrong if w.kind == "update" and w.expected is None}


def column_rounding(check, name):
    """(relative, absolute) half-unit of the last digit that column ``name`` keeps, if it was rounded.

    Judged on up to ``SAMPLE`` of its numbers: the 95th percentile of their significant digits (or
    decimals) at most ROUNDED_DIGITS means the column was rounded; (0, 0) otherwise.
    """
    cache = check.__dict__.setdefault("_rounding", {})
    if name not in cache:
        values = [row[name] for row in check.rows if name in row]
        if len(values) > SAMPLE:
            values = values[:: len(values) // SAMPLE + 1]
        if len(values) < 2 or all(v == values[0] for v in values):
            cache[name] = (0.0, 0.0)  # constants (inputs, targets, a fixed bias) are typed short
        else:
            top = int(0.95 * (len(values) - 1))
            digits, decimals = sorted(map(_digits, values))[top], sorted(map(_decimals, values))[top]
            rel = 0.5 * 10.0 ** (1 - digits) if digits <= ROUNDED_DIGITS else 0.0
            ab = 0.5 * 10.0 ** (-decimals) if decimals <= ROUNDED_DIGITS else 0.0
            cache[name] = (rel, ab)
    return cache[name]


def _digits(x):
    """Significant digits of the shortest decimal that reads back as x."""
    if x == 0:
        return 1
    mantissa = repr(abs(x)).split("e")[0].replace(".", "").lstrip("0")
    return max(len(mantissa.rstrip("0")), 1)


def _decimals(x):
    text = repr(abs(x))
    if "e" in text:
        mantissa, exponent = text.split("e")
        return max(len(mantissa.split(".")[1].rstrip("0")) if "." in mantissa else 0, 0) - int(exponent)
    return len(text.split(".")[1].rstrip("0")) if "." in text else 0


def rounding_err(check):
    """err(name, x) that also allows each rounded column's last-digit rounding."""
    rtol = check.rtol

    def err(name, x):
        rel, ab = column_rounding(check, name) if name is not None else (0.0, 0.0)
        return max(rtol * abs(x), rel * abs(x), ab)

    return err


def _rounded(check, wrong):
    err = rounding_err(check)
    claimed, cache = set(), {}
    for w in wrong:
        if column_rounding(check, w.name) == (0.0, 0.0) or not isinstance(w.found, float):
            continue

        def found_err(_, x, name=w.name):
            return err(name, x)

        if w.kind == "derived":
            if w.step not in cache:
                roots = check.scen.roots(check.rows[w.step], err)
                cache[w.step] = (replay_row(roots, check.rows[w.step], err), replay_row(roots, None, err))
            if any(_agrees(check, w.found, r.get(w.name), found_err) for r in cache[w.step]):
                claimed.add(id(w))
        elif w.kind == "update" and check.rate.value:
            param, before = _update_source(check, w)
            x = check.rows[before].get(param)
            g = check.rows[before].get("dE_d" + param)
            g = (g, err("dE_d" + param, g)) if g is not None else check.used_gradient(before, param)
            if _agrees(check, w.found, updated((x, err(param, x)), g, check.lr_at(before)), found_err):
                claimed.add(id(w))
    return claimed


def _window(check, k):
    rows = set(range(max(0, k - WINDOW), min(check.n, k + WINDOW + 1)))
    rows.add(0)
    return sorted(rows)


def _wrong_row(check, wrong):
    claimed = set()
    for w in wrong:
        if not isinstance(w.found, float):
            continue
        if w.kind == "derived":
            for a in _window(check, w.step):
                if a == w.step:
                    continue
                x = check.rows[a].get(w.name)
                if (x is not None and _agrees(check, w.found, (x, check.err(w.name, x)))) or _agrees(
                    check, w.found, check.local(a).get(w.name)
                ):
                    claimed.add(id(w))
                    break
        elif w.kind == "update" and check.rate.value:
            if _wrong_row_update(check, w):
                claimed.add(id(w))
    return claimed


def _wrong_row_update(check, w):
    param, before = _update_source(check, w)
    rows = _window(check, before)
    for a in rows:  # a plain copy of another row's value
        x = check.rows[a].get(w.name)
        if a != w.step and x is not None and _agrees(check, w.found, (x, check.err(w.name, x))):
            return True
    for a in rows:  # w of row a updated with the gradient of row b
        x = check.rows[a].get(param)
        if x is None:
            continue
        prev = (x, check.err(param, x))
        for b in rows:
            if (a, b) == (before, before):
                continue
            g = check.used_gradient(b, param)
            if _agrees(check, w.found, updated(prev, g, check.lr_at(b))):
                return True
    return False


_EXPLAIN = {slip: _variant(slip) for slip in VARIANTS}
_EXPLAIN.update(
    wrong_sign=_wrong_sign,
    lr_changes=_lr_changes,
    not_updated=_not_updated,
    rounded_values=_rounded,
    wrong_row=_wrong_row,
)
assert set(_EXPLAIN) == set(PRIORITY)
