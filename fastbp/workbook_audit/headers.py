"""Column names as students write them → the SPEC's names.

A header text is normalised (Unicode NFKC, lower case, ∂ → d, Greek letters spelled out,
spaces, ``_ - . , : / * ( ) [ ] { } $ \\`` dropped) and then looked up: ``a_h1``, ``ah1``,
``a-h1``, ``out_h1``, ``σ(h1)`` all become ``a_h1``; ``∂E/∂w1``, ``dE/dw1``, ``∂E_total/∂w1``,
``dEtotal/dw1``, ``grad w1`` all become ``dE_dw1``. Derivatives are parsed as d<numerator>d
<denominator> and accepted only when exactly one split gives two known names, so no header can
mean two things. Texts that name nothing known return None: the column is listed as not checked.

``h1``/``h2``/``o1``/``o2`` are the net inputs, as in the SPEC; a table that has no separate
activation column and whose ``o1`` holds σ(net) is re-read as such by the checker (check.py).
"""

import functools
import re
import unicodedata

# Dependency order inside one row: the first wrong cell of a row is the first in this order,
# so it names the cause (a wrong h1) rather than what followed from it (a wrong a_h1).
WEIGHTS = tuple(f"w{n}" for n in range(1, 9))
GRADIENTS = tuple(f"dE_dw{n}" for n in range(1, 9))
BIASES = ("b1", "b2", "b_h1", "b_h2", "b_o1", "b_o2")
BIAS_GRADIENTS = ("dE_db1", "dE_db2", "dE_db_h1", "dE_db_h2", "dE_db_o1", "dE_db_o2")
NEXT_WEIGHTS = tuple(f"{w}_next" for w in WEIGHTS)
INPUTS = ("i1", "i2", "t1", "t2")
FORWARD = ("h1", "a_h1", "h2", "a_h2", "o1", "a_o1", "o2", "a_o2", "E1", "E2", "E_total")
INTERMEDIATE = (
    "dE_da_o1",
    "dE_da_o2",
    "da_o1_do1",
    "da_o2_do2",
    "delta_o1",
    "delta_o2",
    "dE_da_h1",
    "dE_da_h2",
    "da_h1_dh1",
    "da_h2_dh2",
    "delta_h1",
    "delta_h2",
)
ORDER = (
    ("lr",) + WEIGHTS + BIASES + INPUTS + FORWARD + INTERMEDIATE + GRADIENTS + BIAS_GRADIENTS + NEXT_WEIGHTS
)
RANK = {name: k for k, name in enumerate(ORDER)}

# Header texts that are expected around a table and need no check (not listed as "not checked").
IGNORED = {"step", "steps", "iteration", "iterations", "iter", "epoch", "n", "k", "#", "no", "nr", "row"}

# lr, η, α, "learning rate", … as a column or as a label next to a number.
LR_FORMS = ("lr", "learningrate", "learnrate", "eta", "alpha", "stepsize", "lernrate", "rate")

_GREEK = {"∂": "d", "𝜕": "d", "η": "eta", "α": "alpha", "δ": "delta", "σ": "sigma", "Σ": "sigma"}
_DROP = re.compile(r"[\s_\-.,:;/*()\[\]{}$\\`\"·×^]+")
_BRACKETED = re.compile(r"\([^()]*\)|\[[^\[\]]*\]")


def _base_aliases():
    a = {}

    def add(canon, *forms):
        for form in forms:
            a[form] = canon

    for n in (1, 2):
        add(f"i{n}", f"i{n}", f"in{n}", f"input{n}", f"inputi{n}", f"x{n}")
        add(f"t{n}", f"t{n}", f"target{n}", f"targeto{n}", f"to{n}", f"targetoutput{n}")
        h, o = f"h{n}", f"o{n}"
        add(h, h, f"net{h}", f"{h}net", f"z{h}", f"in{h}", f"netinput{h}", f"input{h}", f"net{n}")
        add(f"a_{h}", f"a{h}", f"out{h}", f"{h}out", f"output{h}", f"sigma{h}", f"sig{h}", f"sigmoid{h}")
        add(f"a_{h}", f"act{h}", f"activation{h}", f"y{h}", f"{h}a", f"{h}output")
        add(o, o, f"net{o}", f"{o}net", f"z{o}", f"in{o}", f"netinput{o}", f"input{o}")
        add(f"a_{o}", f"a{o}", f"out{o}", f"{o}out", f"output{o}", f"sigma{o}", f"sig{o}", f"sigmoid{o}")
        add(f"a_{o}", f"act{o}", f"activation{o}", f"y{o}", f"out{n}", f"output{n}", f"{o}output")
        add(f"E{n}", f"e{n}", f"eo{n}", f"error{n}", f"erroro{n}", f"err{n}", f"loss{n}", f"losso{n}")
        add(f"E{n}", f"e{o}", f"errorout{n}", f"eout{n}")
        for unit in (h, o):  # σ(net_h1), sigmoid(z_o1), out(net_h1), …
            for net in (unit, f"net{unit}", f"z{unit}", f"netinput{unit}"):
                for act in ("sigma", "sig", "sigmoid", "out", "act", "activation", "f"):
                    a.setdefault(f"{act}{net}", f"a_{unit}")
    add("E_total", "etotal", "etot", "e", "error", "totalerror", "errortotal", "loss", "totalloss")
    add("E_total", "losstotal", "cost", "totalcost", "sumerror", "err", "etotalerror", "et")
    add("E_total", "sumoferrors", "sumerrors", "errorsum", "totale", "e1+e2", "eo1+eo2")
    for n in range(1, 9):
        add(f"w{n}", f"w{n}", f"weight{n}", f"w{n}old", f"oldw{n}", f"w{n}current")
        add(f"w{n}_next", f"neww{n}", f"w{n}new", f"updatedw{n}", f"w{n}updated", f"w{n}+", f"w{n}'")
        add(f"w{n}_next", f"w{n}next", f"nextw{n}", f"w{n}'new", f"w{n}+1")
    # Biases: "b1"/"b2" are the walk-through's shared layer biases; with b3/b4 beside them they
    # are one per unit (resolved per table by resolve_bias_names).
    for n in (1, 2, 3, 4):
        add(f"b{n}", f"b{n}", f"bias{n}")
    add("b1", "bhidden", "biashidden", "hiddenbias")
    add("b2", "boutput", "biasoutput", "outputbias", "bout")
    for unit in ("h1", "h2", "o1", "o2"):
        add(f"b_{unit}", f"b{unit}", f"bias{unit}", f"{unit}bias", f"b{unit}bias")
    for form in LR_FORMS:
        add("lr", form)
    return a


BASE = _base_aliases()

# Numerators of a derivative: the total loss, or one output's error (∂E1/∂w5 = ∂E/∂w5).
_TOTAL = {"e", "etot", "etotal", "error", "err", "loss", "l", "c", "cost", "totalerror", "et"}
_ONE = {"e1": 1, "eo1": 1, "error1": 1, "e2": 2, "eo2": 2, "error2": 2}
_OUTPUT_OF = {
    "w5": 1,
    "w6": 1,
    "b_o1": 1,
    "a_o1": 1,
    "o1": 1,
    "w7": 2,
    "w8": 2,
    "b_o2": 2,
    "a_o2": 2,
    "o2": 2,
}
# ∂E/∂x for each x that has a column of its own.
_DERIVATIVE_OF = {
    **{w: f"dE_d{w}" for w in WEIGHTS},
    **{b: f"dE_d{b}" for b in ("b1", "b2", "b3", "b4", "b_h1", "b_h2", "b_o1", "b_o2")},
    "a_o1": "dE_da_o1",
    "a_o2": "dE_da_o2",
    "o1": "delta_o1",
    "o2": "delta_o2",
    "a_h1": "dE_da_h1",
    "a_h2": "dE_da_h2",
    "h1": "delta_h1",
    "h2": "delta_h2",
}
# ∂a/∂net of each unit.
_LOCAL = {("a_o1", "o1"), ("a_o2", "o2"), ("a_h1", "h1"), ("a_h2", "h2")}


def normalise(text):
    s = unicodedata.normalize("NFKC", str(text)).strip()
    s = "".join(_GREEK.get(ch, ch) for ch in s).lower()
    s = "".join(_GREEK.get(ch, ch) for ch in s)  # lower-casing Δ gives δ
    return _DROP.sub("", s).rstrip("=")


def _derivative(s):
    """d<num>d<den> (or delta…delta…) → a canonical name, when exactly one split is valid."""
    found = set()
    for lead in ("delta", "d"):
        if not s.startswith(lead):
            continue
        rest = s[len(lead) :]
        for mid in ("delta", "d"):
            start = 1
            while (p := rest.find(mid, start)) > 0:
                num, den = rest[:p], rest[p + len(mid) :]
                name = _pair(num, den)
                if name is not None:
                    found.add(name)
                start = p + 1
    return found.pop() if len(found) == 1 else None


def _pair(num, den):
    den_name = BASE.get(den)
    if den_name is None:
        return None
    if num in _TOTAL:
        return _DERIVATIVE_OF.get(den_name)
    if num in _ONE:  # ∂E1/∂w5 is ∂E/∂w5: only output 1's quantities reach E1
        return _DERIVATIVE_OF.get(den_name) if _OUTPUT_OF.get(den_name) == _ONE[num] else None
    num_name = BASE.get(num)
    if (num_name, den_name) in _LOCAL:
        return f"d{num_name}_d{den_name}"
    return None


def _gradient_prefix(s):
    for prefix in ("gradient", "grad", "g"):
        if s.startswith(prefix):
            name = BASE.get(s[len(prefix) :])
            if name in _DERIVATIVE_OF and (name.startswith("w") or name.startswith("b")):
                return _DERIVATIVE_OF[name]
    if re.fullmatch(r"g[1-8]", s):
        return f"dE_dw{s[1]}"
    return None


def _delta(s):
    m = re.fullmatch(r"delta([ho])([12])|delta([12])([ho])", s)
    if not m:
        return None
    layer, unit = (m.group(1), m.group(2)) if m.group(1) else (m.group(4), m.group(3))
    return f"delta_{layer}{unit}"


def _lookup(s):
    if not s:
        return None
    if s in BASE:
        return BASE[s]
    return _delta(s) or _gradient_prefix(s) or _derivative(s)


def canonical(text):
    """The SPEC name a header text stands for (``b1``…``b4`` still raw), or None."""
    return _canonical(text) if isinstance(text, str) else None


@functools.lru_cache(maxsize=8192)  # every workbook of a class repeats the same headers
def _canonical(text):
    name = _lookup(normalise(text))
    if name is None and ("(" in text or "[" in text):
        # "w1 (i1→h1)", "E_total [loss]": the bracketed part is a comment.
        name = _lookup(normalise(_BRACKETED.sub("", text)))
    return name


def is_ignored(text):
    return isinstance(text, str) and normalise(text) in IGNORED


def resolve_bias_names(names):
    """Map raw b1…b4 (and their gradients) of one table to the SPEC's bias names.

    b1, b2 alone are the shared hidden and output biases (SPEC "Biases"); with b3 or b4 in the
    same table they are one per unit: b1, b2 → b_h1, b_h2 and b3, b4 → b_o1, b_o2.
    """
    per_unit = any(n in names for n in ("b3", "b4", "dE_db3", "dE_db4"))
    unit = {"b1": "b_h1", "b2": "b_h2", "b3": "b_o1", "b4": "b_o2"}
    out = {}
    for name in names:
        raw = name[4:] if name.startswith("dE_d") else name
        if raw in unit:
            new = unit[raw] if per_unit else (raw if raw in ("b1", "b2") else None)
            if new is None:
                continue
            out[name] = f"dE_d{new}" if name.startswith("dE_d") else new
        else:
            out[name] = name
    return out
