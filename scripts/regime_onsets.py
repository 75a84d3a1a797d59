#!/usr/bin/env python
"""Where each regime begins along the learning rate, read from a diagnostics sweep's dataset.

    python scripts/regime_onsets.py DATASET

For the course initialisation: the rate ranges of each regime, in rate order, with the stability
number at the first and last weights. For every other block: the share of its runs in each
regime at a few rates. The README's numbers on regimes come from this (on results/regimes).
"""

import argparse
import sys

import numpy as np
import pyarrow.dataset as ds

from fastbp.regimes import REGIMES


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset")
    args = parser.parse_args(argv)
    columns = ["lr", "init", "regime", "stability_init", "stability_final", "max_loss", "final_loss"]
    table = ds.dataset(args.dataset).to_table(columns=columns).sort_by("lr").to_pydict()
    runs = {name: np.array(values) for name, values in table.items()}
    course = runs["init"] == "course"
    print("course weights:")
    lrs, regime = runs["lr"][course], runs["regime"][course]
    start = 0
    for k in range(1, len(lrs) + 1):
        if k == len(lrs) or regime[k] != regime[start]:
            at = np.flatnonzero(course)[start]
            print(
                f"  lr {lrs[start]:>10.4g} … {lrs[k - 1]:<10.4g} {regime[start]:<12} "
                f"(at lr {lrs[start]:.4g}: stability {runs['stability_init'][at]:.3g} → "
                f"{runs['stability_final'][at]:.3g}, max E {runs['max_loss'][at]:.3g})"
            )
            start = k
    others = ~course
    rates = np.unique(runs["lr"][others])
    shown = rates[np.linspace(0, len(rates) - 1, min(len(rates), 13)).round().astype(int)]
    print("other initialisations, share of runs per regime:")
    print("  " + f"{'lr':>10} " + " ".join(f"{name:>11}" for name in REGIMES))
    for lr in shown:
        here = others & (runs["lr"] == lr)
        shares = [(runs["regime"][here] == name).mean() for name in REGIMES]
        print("  " + f"{lr:>10.4g} " + " ".join(f"{share:>10.1%} " for share in shares))
    return 0


if __name__ == "__main__":
    sys.exit(main())
