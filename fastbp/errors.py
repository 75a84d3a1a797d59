"""Refusals: one line naming the field, the value received and what is allowed.

``SpecError`` is the library's one bad-input error: raised before anything is computed or
written, it names a field in the library's terms (``lr``, ``out``, ``init[0].count``); the CLI
renames fields that are its options (``--lr``, ``--out``), prints the line and exits 2. The
checkers below are shared by the step table, the sweep spec and the CLI so that the same
mistake gets the same words everywhere.
"""

import math
import numbers
import struct


class SpecError(ValueError):
    """Bad input: ``field`` got ``value``; ``allowed`` says what would be accepted."""

    def __init__(self, field, value, allowed):
        self.field, self.value, self.allowed = field, value, allowed
        super().__init__(f"{field}: got {_show(value)}; allowed: {allowed}")

    def renamed(self, field):
        """The same refusal under another name for its field (the CLI's option for it)."""
        return SpecError(field, self.value, self.allowed)


class DatasetError(SpecError):
    """An output location that cannot be used as asked (exists with another spec, is a file …)."""


def _show(value):
    text = repr(value) if isinstance(value, str) else str(value)
    # Cut in the middle: a long path's file name, at its end, is the part a reader needs.
    return text if len(text) <= 80 else text[:38] + "..." + text[-39:]


def finite_number(field, value, *, positive=False, strings=True):
    """``value`` as a float; refuses bools, non-numbers, NaN, ±inf (and ≤ 0 if ``positive``).

    ``strings=True`` (command-line values) also parses a string; a spec file passes ``False``
    so that ``lr = "0.1"`` is refused as the wrong type rather than read.
    """
    allowed = "a finite number > 0" if positive else "a finite number"
    if isinstance(value, str) and not strings:
        raise SpecError(field, value, allowed + " (a TOML number, not a string)")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise SpecError(field, value, allowed) from None
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise SpecError(field, value, allowed)
    value = float(value)
    if not math.isfinite(value) or (positive and value <= 0):
        raise SpecError(field, value, allowed)
    return value


def integer(field, value, *, minimum=None, strings=True):
    """``value`` as an int (no bools, no floats); at least ``minimum`` if given.

    ``strings``: as in ``finite_number``.
    """
    allowed = "an integer" if minimum is None else f"an integer >= {minimum}"
    if isinstance(value, str) and not strings:
        raise SpecError(field, value, allowed + " (a TOML integer, not a string)")
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise SpecError(field, value, allowed) from None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise SpecError(field, value, allowed)
    value = int(value)
    if minimum is not None and value < minimum:
        raise SpecError(field, value, allowed)
    return value


def number_tuple(field, value, length, *, strings=True):
    """Exactly ``length`` finite numbers, as a tuple of floats (``strings``: as in ``finite_number``)."""
    allowed = f"exactly {length} finite numbers"
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__"):
        raise SpecError(field, value, allowed)
    if len(value) != length:
        raise SpecError(field, list(value), f"{allowed} ({len(value)} given)")
    return tuple(finite_number(f"{field}[{k}]", v, strings=strings) for k, v in enumerate(value))


def choice(field, value, options):
    if value not in options:
        raise SpecError(field, value, "one of " + ", ".join(repr(o) for o in options))
    return value


#: The largest finite float32, numpy.finfo(numpy.float32).max (kept here to spare numpy's import).
FLOAT32_MAX = 3.4028234663852886e38


def float32_number(field, value, *, positive=False, when="dtype = 'float32'"):
    """``value`` (a finite float) unless float32 cannot hold it: a float32 computation rounds its
    numbers to float32 first, so refuse one that would become ±inf (or 0, if ``positive``)
    instead of computing with that. ``when`` ends the message: the setting that asks for float32.
    """
    try:  # C's double → float conversion, round to nearest: numpy.float32(value)'s rounding
        rounded = struct.unpack("f", struct.pack("f", value))[0]
    except OverflowError:
        rounded = math.inf
    if not math.isfinite(rounded) or (positive and rounded <= 0):
        allowed = "a number > 0" if positive else "a number"
        raise SpecError(
            field,
            value,
            f"{allowed} that float32 can hold (|x| <= {FLOAT32_MAX:.4g}"
            f"{', not rounding to 0' if positive else ''}) when {when}",
        )
    return value
