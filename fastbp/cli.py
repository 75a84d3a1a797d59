"""The ``fastbp`` command: ``main(argv)`` parses, calls the package, and returns an exit code.

Exit codes: 0 done; 2 bad input (one line on stderr naming the option, the value and what is
allowed; nothing written); 1 a run that failed for another reason (one line, no traceback);
130 interrupted (finished shards are kept; run the same command again to resume).
"""

import argparse
import os
import sys

from fastbp.course import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS
from fastbp.errors import SpecError

TABLE_FORMATS = ("csv", "markdown", "parquet")


class UsageError(Exception):
    pass


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line, exit 2 (argparse would print the usage too)
        raise UsageError(f"{self.prog}: error: {message} (see {self.prog} --help)")


def build_parser():
    parser = _Parser(
        prog="fastbp", description="Train very many copies of the 2-2-2 backprop exercise at once."
    )
    parser.add_argument("--version", action="version", version=_version())
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    table = commands.add_parser(
        "table",
        help="the spreadsheet's 31-column step table",
        description="The SPEC's step table: one row per step, 31 columns.",
    )
    table.add_argument("--lr", required=True, help="learning rate (a finite number)")
    table.add_argument("--steps", required=True, help="number of rows (steps 0 … N − 1), >= 0")
    table.add_argument(
        "--inputs",
        nargs="+",
        metavar=("I1", "I2"),
        default=list(COURSE_INPUTS),
        help="inputs i1 i2 (default: the course's 0.05 0.1)",
    )
    table.add_argument(
        "--targets",
        nargs="+",
        metavar=("T1", "T2"),
        default=list(COURSE_TARGETS),
        help="targets t1 t2 (default: 0.5 0.5)",
    )
    table.add_argument(
        "--weights",
        nargs="+",
        metavar="W",
        default=list(COURSE_WEIGHTS),
        help="initial w1 … w8 (default: the course's 0.15 … 0.55)",
    )
    table.add_argument("--dtype", default="float64", help="float64 (default) or float32")
    table.add_argument("--format", default="csv", help="csv (default), markdown or parquet")
    table.add_argument("--out", help="output file (default: standard output; required for parquet)")

    sweep = commands.add_parser(
        "sweep",
        help="train a grid of runs into a Parquet dataset",
        description="Train every run of a sweep spec (TOML) into a Parquet dataset.",
    )
    sweep.add_argument("spec", help="the sweep spec, a TOML file (see README)")
    sweep.add_argument("--out", required=True, help="dataset directory (or a pyarrow filesystem URL)")
    sweep.add_argument("--threads", help="Numba threads (default: all cores)")
    sweep.add_argument("--overwrite", action="store_true", help="replace a dataset of a different spec")
    sweep.add_argument("--backend", default="threads", help="threads (default) or dask")
    sweep.add_argument("--address", help="with --backend dask: scheduler address (default: a local cluster)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    plot = commands.add_parser(
        "plot",
        help="figures from a sweep dataset",
        description="Loss-curve figures from a sweep dataset (its Parquet files alone).",
    )
    plot.add_argument("dataset", help="the dataset directory written by fastbp sweep")
    plot.add_argument("--out", required=True, help="directory for the figures")
    plot.add_argument("--format", default="png", help="png (default), svg or pdf")
    from fastbp.workbook_audit.cli import add_parser

    add_parser(commands)
    return parser


def _version():
    import fastbp

    return f"fastbp {fastbp.__version__}"


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        args = build_parser().parse_args(argv)
        if args.command == "table":
            return _table(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "audit":
            return args.run(args)
        return _plot(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SpecError as exc:
        print(f"fastbp: error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fastbp table … | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:
        print(
            "fastbp: interrupted; finished shards are kept (run the same command to resume)", file=sys.stderr
        )
        return 130
    except Exception as exc:  # a failure, not a usage error: one line, not a traceback
        if os.environ.get("FASTBP_DEBUG"):
            raise
        print(
            f"fastbp: failed: {type(exc).__name__}: {exc} (set FASTBP_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


def main_entry():
    """The ``fastbp`` console command."""
    # Numba probes for SciPy's BLAS while it loads any cached kernel (for np.dot & co., which
    # fastbp never calls); with SciPy installed that import costs ~0.25 s of every command's
    # start-up. This process runs only fastbp, so the probe is told no BLAS is there.
    if "scipy.linalg" not in sys.modules:
        sys.modules["scipy.linalg"] = None
    sys.exit(main())


def _check_output_file(field, path):
    """Refuse an --out file that cannot be written, before computing anything."""
    directory = os.path.dirname(os.path.abspath(path))
    if os.path.isdir(path):
        raise SpecError(field, path, "a file path (this is a directory)")
    if not os.path.isdir(directory):
        raise SpecError(field, path, f"a file in an existing directory ({directory} does not exist)")
    if not os.access(directory, os.W_OK):
        raise SpecError(field, path, f"a file in a writable directory ({directory} is not writable)")


def _table(args):
    from fastbp.table import check_table_args

    lr, steps, inputs, targets, weights, dtype = check_table_args(
        args.lr, args.steps, args.inputs, args.targets, args.weights, args.dtype, prefix="--"
    )
    if args.format not in TABLE_FORMATS:
        raise SpecError("--format", args.format, "one of csv, markdown, parquet")
    if args.out is not None:
        _check_output_file("--out", args.out)
    elif args.format == "parquet":
        raise SpecError("--out", "nothing", "a file path: parquet is binary and needs --out FILE")

    if args.format == "parquet":
        import pyarrow.parquet as pq

        from fastbp.table import step_table

        table = step_table(lr, steps, inputs, targets, weights, dtype)
        _atomic_write(args.out, lambda path: pq.write_table(table, path))
        return 0
    # Text formats skip pyarrow (a fifth of the start-up): the same kernel, straight to text.
    from fastbp.kernels import TABLE_COLUMNS, step_table_array

    values = step_table_array(lr, steps, inputs, targets, weights, dtype)
    text = _csv(TABLE_COLUMNS, values) if args.format == "csv" else _markdown(TABLE_COLUMNS, values)
    if args.out is None:
        sys.stdout.write(text)
    else:
        _atomic_write(args.out, lambda path: _write_text(path, text))
    return 0


def _write_text(path, text):
    with open(path, "w") as handle:
        handle.write(text)


def _atomic_write(path, write):
    tmp = os.path.join(os.path.dirname(os.path.abspath(path)), f".{os.path.basename(path)}.tmp-{os.getpid()}")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _csv(names, values):
    # repr() of a float is the shortest string that reads back to the same float64: round trip exact.
    lines = [",".join(names)]
    lines += [",".join(repr(float(v)) for v in row) for row in values.tolist()]
    return "\n".join(lines) + "\n"


def _markdown(names, values):
    lines = ["| " + " | ".join(names) + " |", "|" + " ---: |" * len(names)]
    lines += ["| " + " | ".join(f"{v:.6g}" for v in row) + " |" for row in values.tolist()]
    return "\n".join(lines) + "\n"


def _sweep(args):
    from fastbp.engine import sweep

    threads = None
    if args.threads is not None:
        from fastbp.errors import integer

        threads = integer("--threads", args.threads, minimum=1)
    summary = sweep(
        args.spec,
        args.out,
        threads=threads,
        overwrite=args.overwrite,
        progress=not args.quiet,
        backend=args.backend,
        address=args.address,
        out_field="--out",
    )
    if summary.shards_computed == 0:
        print(
            f"fastbp: nothing to do: all {summary.n_shards} shards of {summary.out} are done", file=sys.stderr
        )
    else:
        resumed = (
            "" if summary.runs_computed == summary.n_runs else f" (of {summary.n_runs:,}; the rest were done)"
        )
        print(
            f"fastbp: wrote {summary.runs_computed:,} runs{resumed} in {summary.shards_computed} shard(s) "
            f"to {summary.out} ({summary.seconds:.2f} s, {summary.run_steps_per_second / 1e6:.3g} M run-steps/s)",
            file=sys.stderr,
        )
    return 0


def _plot(args):
    from fastbp.plots import plot_dataset

    written = plot_dataset(args.dataset, args.out, fmt=args.format, field_prefix="--")
    for path in written:
        print(path)
    return 0
