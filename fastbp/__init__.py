"""fastbp: train very many copies of one 2-2-2 sigmoid network at once, exactly (docs/model.md).

``import fastbp`` is cheap: nothing compiles and numba/pyarrow load only when a function that
needs them is called.

    fastbp.step_table(lr=2.0, steps=88)          # the spreadsheet's 31 columns (pyarrow.Table)
    fastbp.sweep("spec.toml", out="runs/")       # a grid of runs to a Parquet dataset
    fastbp.audit("book.xlsx")                    # a student's workbook checked (needs openpyxl)
"""

from fastbp._version import __version__

__all__ = ["step_table", "sweep", "audit", "load_spec", "SpecError", "__version__"]


def __getattr__(name):
    # Lazy: keeps `import fastbp` free of numba/pyarrow start-up cost.
    if name == "step_table":
        from fastbp.table import step_table

        return step_table
    if name == "sweep":
        from fastbp.engine import sweep

        return sweep
    if name == "audit":  # the package is fastbp.workbook_audit, so this name stays the function
        from fastbp.workbook_audit.api import audit

        return audit
    if name == "load_spec":
        from fastbp.spec import load_spec

        return load_spec
    if name == "SpecError":
        from fastbp.errors import SpecError

        return SpecError
    raise AttributeError(f"module 'fastbp' has no attribute {name!r}")
