"""The library behind scripts/bench.py (and scripts/kernel_floor.py); bench.py is its command line.

Modules, leaves first (import the one you need; this file imports nothing):

- ``problem``   the benchmarked problem (`Problem`, `make_problem`) and the workloads' `Sizes`
- ``validate``  the one validator: final losses against a float64 reference
- ``report``    `Row`, one line of a result table, and `print_table`
- ``machine``   CPU model, cores, load average, the run's header
- ``timing``    fastbp's kernel timed in-process (`time_kernel`) and a peer's row (`peer_row`)
- ``command``   the whole ``fastbp`` command timed as a subprocess (`CommandRunner`)
- ``w1``        workloads W1 / W1-f32: fastbp beside every peer
- ``scaling``   workloads W2 (recording), W3 (runs and threads) and ``table``
- ``against``   A/B against another git revision (``bench.py --against REV``)
- ``kernel_child``  the timing script ``against`` runs inside either tree

The peers (other implementations of the same problem) are the sibling package ``peers``.
Both are imported as top-level packages: running a script in scripts/ puts scripts/ first
on sys.path, and fastbp itself is the installed (editable) package.
"""
