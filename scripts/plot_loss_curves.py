#!/usr/bin/env python
"""Figures from a sweep dataset's Parquet files: ``fastbp plot`` under another name.

    python scripts/plot_loss_curves.py DATASET --out FIGDIR [--format png|svg|pdf]

Writes one ``loss_lr_{lr}`` figure per learning rate, ``loss_course`` (the course weights at every
learning rate) and ``overview`` into FIGDIR and prints their paths; see ``fastbp.plots``. Exit
codes as ``fastbp``: 0 done, 2 bad input (one line on stderr), 1 other failure. Needs fastbp
installed (``make install``, editable).
"""

import sys

from fastbp.cli import main

if __name__ == "__main__":
    sys.exit(main(["plot", *sys.argv[1:]]))
