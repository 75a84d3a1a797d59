"""The ``fastbp`` command: ``main(argv)`` parses, calls the package, and returns an exit code.

Exit codes: 0 done; 2 bad input (one line on stderr naming the option, the value and what is
allowed; nothing written); 1 a run that failed for another reason (one line, no traceback);
130 interrupted by Ctrl-C (SIGINT), 143 terminated (SIGTERM): within about a second, finished
shards are kept; run the same command again to resume.
"""

import argparse
import contextlib
import os
import re
import sys

from fastbp.errors import SpecError
from fastbp.files import write_atomically

TABLE_FORMATS = ("csv", "markdown", "parquet")

#: Per command, the library's fields that are options of that command: the one place where a
#: field (``lr``, ``out``) becomes the option a user typed (``--lr``, ``--out``).
OPTION_FIELDS = {
    "table": (
        "lr",
        "lr_hidden",
        "lr_output",
        "steps",
        "layers",
        "activation",
        "output_activation",
        "data",
        "update",
        "inputs",
        "targets",
        "weights",
        "biases",
        "train_biases",
        "dtype",
        "format",
        "out",
    ),
    "sweep": ("out", "threads", "backend", "address"),
    "plot": ("format", "out", "figures"),
}


def option_name(command, field):
    """``field`` as the user wrote it: ``weights[3]`` → ``--weights[3]`` where it is an option."""
    root = re.match(r"[A-Za-z_]*", field).group()
    if root in OPTION_FIELDS.get(command, ()):
        return "--" + root.replace("_", "-") + field[len(root) :]
    return field


class UsageError(Exception):
    pass


class Terminated(BaseException):
    """SIGTERM, raised in the main thread like Ctrl-C's KeyboardInterrupt (exit 143)."""


def _raise_terminated(signum, frame):
    raise Terminated()


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
        description="The step table (docs/model.md): one row per step, 31 columns (more with biases).",
    )
    table.add_argument("--lr", help="learning rate (a finite number > 0); or --lr-hidden and --lr-output")
    table.add_argument("--lr-hidden", metavar="X", help="the hidden layer's rate (w1 … w4), with --lr-output")
    table.add_argument("--lr-output", metavar="Y", help="the output layer's rate (w5 … w8), with --lr-hidden")
    table.add_argument("--steps", required=True, help="number of rows (steps 0 … N − 1), 0 to 2147483647")
    table.add_argument(
        "--layers",
        nargs="+",
        metavar="N",
        help="N_IN N_HIDDEN N_OUT: any network with one hidden layer (default: the exercise's 2 2 2)",
    )
    table.add_argument("--activation", help="the hidden layer's: sigmoid (default) or tanh")
    table.add_argument("--output-activation", help="the output layer's: sigmoid, tanh or linear")
    table.add_argument("--data", help="course (default), xor, encoder, complement_encoder or parity")
    table.add_argument("--update", help="batch (default: one update a step) or online (one per pattern)")
    table.add_argument(
        "--inputs",
        nargs="+",
        metavar="X",
        help="inputs i1 i2 (default: the course's 0.05 0.1); for a network, every pattern's, row by row",
    )
    table.add_argument(
        "--targets",
        nargs="+",
        metavar="T",
        help="targets t1 t2 (default: 0.5 0.5); for a network, every pattern's, row by row",
    )
    table.add_argument(
        "--weights",
        nargs="+",
        metavar="W",
        help="initial w1 … w8 (default: the course's 0.15 … 0.55); for a network, every parameter in "
        "the documented order (required unless 2-2-2)",
    )
    table.add_argument(
        "--biases",
        nargs="+",
        metavar="B",
        help="B_H B_O (one bias per layer) or B_H1 B_H2 B_O1 B_O2 (one per unit), or trained (one per "
        "unit, trained, initial values after the weights in --weights); default: no biases",
    )
    table.add_argument("--train-biases", action="store_true", help="train the biases (default: fixed)")
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
    sweep.add_argument("--quiet", action="store_true", help="no plan and no progress bar")
    sweep.add_argument(
        "--wait", action="store_true", help="wait for another sweep writing into --out to finish"
    )
    sweep.add_argument(
        "--dry-run", action="store_true", help="print the plan (runs, shards, bytes, time) and write nothing"
    )

    plot = commands.add_parser(
        "plot",
        help="figures from a sweep dataset",
        description="Loss-curve figures from a sweep dataset (its Parquet files alone).",
    )
    plot.add_argument("dataset", help="the dataset directory written by fastbp sweep")
    plot.add_argument("--out", required=True, help="directory for the figures")
    plot.add_argument("--format", default="png", help="png (default), svg or pdf")
    plot.add_argument(
        "--figures",
        help="which kinds to draw, comma-separated: loss, rates, regimes, edge_of_stability, "
        "trainability_map, reach (default: every kind the dataset's columns allow)",
    )
    plot.add_argument(
        "--partial",
        action="store_true",
        help="draw an incomplete dataset's sound shards (the figures say so)",
    )

    check = commands.add_parser(
        "check",
        help="is a dataset complete and sound?",
        description="Check a sweep dataset from its shards' footers: complete, incomplete or damaged.",
    )
    check.add_argument("dataset", help="the dataset directory (or URL) written by fastbp sweep")

    from fastbp.workbook_audit.cli import add_parser

    add_parser(commands)
    return parser


def _version():
    from fastbp._version import __version__

    return f"fastbp {__version__}"


def main(argv=None):
    """Run the command line ``argv`` (default ``sys.argv[1:]``); returns the exit code."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = None
    try:
        args = build_parser().parse_args(argv)
        if args.command == "table":
            return _table(args)
        if args.command == "sweep":
            return _sweep(args)
        if args.command == "check":
            return _check(args)
        if args.command == "audit":
            return args.run(args)
        return _plot(args)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return 2
    except SpecError as exc:
        command = getattr(args, "command", None)
        print(f"fastbp: error: {exc.renamed(option_name(command, exc.field))}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # `fastbp table … | head`: the reader has all it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except SystemExit as exit_:  # --help, --version
        return exit_.code if isinstance(exit_.code, int) else 0
    except KeyboardInterrupt:
        print(f"fastbp: interrupted; {_what_is_kept(args)}", file=sys.stderr)
        return 130
    except Terminated:
        print(f"fastbp: terminated; {_what_is_kept(args)}", file=sys.stderr)
        return 143
    except Exception as exc:  # a failure, not a usage error: one line, not a traceback
        if os.environ.get("FASTBP_DEBUG"):
            raise
        print(
            f"fastbp: failed: {type(exc).__name__}: {exc} (set FASTBP_DEBUG=1 for a traceback)",
            file=sys.stderr,
        )
        return 1


def _what_is_kept(args):
    if getattr(args, "command", None) == "table":
        return "the table is incomplete (an --out file is not written)"
    return "finished shards are kept (run the same command to resume)"


def main_entry():
    """The ``fastbp`` console command."""
    # Numba probes for SciPy's BLAS while it loads any cached kernel (for np.dot & co., which
    # fastbp never calls); with SciPy installed that import costs ~0.25 s of every command's
    # start-up. This process runs only fastbp, so the probe is told no BLAS is there.
    if "scipy.linalg" not in sys.modules:
        sys.modules["scipy.linalg"] = None
    sys.exit(main())


def _check_output_file(path, field="out"):
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

    try:
        checked = check_table_args(
            args.lr,
            args.steps,
            args.inputs,
            args.targets,
            args.weights,
            args.dtype,
            biases="trained" if args.biases == ["trained"] else args.biases,
            train_biases=args.train_biases,
            lr_hidden=args.lr_hidden,
            lr_output=args.lr_output,
            layers=args.layers,
            activation=args.activation,
            output_activation=args.output_activation,
            data=args.data,
            update=args.update,
        )
    except SpecError as exc:  # main() names the field as an option; this, the fields it mentions
        raise SpecError(exc.field, exc.value, _as_options(exc.allowed)) from None
    if args.format not in TABLE_FORMATS:
        raise SpecError("format", args.format, "one of csv, markdown, parquet")
    if args.out is not None:
        _check_output_file(args.out)
    elif args.format == "parquet":
        raise SpecError("out", "nothing", "a file path: parquet is binary and needs --out FILE")

    with _terminate_raises():  # a killed table leaves no temporary file, as a sweep does
        return _write_table(args, checked)


def _write_table(args, checked):
    if args.format == "parquet":
        from fastbp.table import write_parquet

        write_atomically(args.out, lambda stream: write_parquet(checked, stream))
        return 0
    # Text formats skip pyarrow (a fifth of the start-up): the same kernel, straight to text,
    # streamed a chunk of rows at a time so that memory stays flat in --steps.
    from fastbp.table import table_rows

    render = _csv if args.format == "csv" else _markdown
    names = checked.options.table_columns()
    steps = checked.steps
    chunks = table_rows(checked)

    def write(stream):
        for first, chunk in enumerate(chunks):
            stream.write(render(names, chunk, header=first == 0).encode())

    if args.out is None:
        write(sys.stdout.buffer)
        sys.stdout.flush()
    else:
        write_atomically(args.out, write)
    if steps == 0:  # no chunk at all: the header alone
        header = render(names, [], header=True).encode()
        if args.out is None:
            sys.stdout.buffer.write(header)
        else:
            write_atomically(args.out, lambda stream: stream.write(header))
    return 0


# The step table's fields that its refusals mention by name, longest first (lr_hidden before lr).
_TABLE_WORDS = re.compile(
    r"\b(lr_hidden|lr_output|train_biases|biases|dtype|lr|layers|output_activation|activation|update)\b"
    r"|\bdata(?= = )"  # `data = 'xor'`, not "a data set"
)


def _as_options(allowed):
    """A table refusal's words in the user's terms: ``lr_output`` → ``--lr-output``."""
    return _TABLE_WORDS.sub(lambda match: option_name("table", match.group()), allowed)


def _csv(names, values, header=True):
    # repr() of a float is the shortest string that reads back to the same float64: round trip exact.
    lines = [",".join(names)] if header else []
    lines += [",".join(repr(float(v)) for v in row) for row in _rows(values)]
    return "\n".join(lines) + "\n" if lines else ""


def _markdown(names, values, header=True):
    lines = ["| " + " | ".join(names) + " |", "|" + " ---: |" * len(names)] if header else []
    lines += ["| " + " | ".join(f"{v:.6g}" for v in row) + " |" for row in _rows(values)]
    return "\n".join(lines) + "\n" if lines else ""


def _rows(values):
    return values.tolist() if hasattr(values, "tolist") else values


@contextlib.contextmanager
def _terminate_raises():
    """Within: SIGTERM raises ``Terminated`` in the main thread, as Ctrl-C raises
    KeyboardInterrupt, so that a file being written is removed on the way out. The kernels
    return to Python between slices of steps (a sweep, ~0.25 s) or chunks of rows (a table)."""
    import signal
    import threading

    previous = None
    if threading.current_thread() is threading.main_thread():
        previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _sweep(args):
    from fastbp.engine import sweep

    with _terminate_raises():
        return _run_sweep(args, sweep)


def _run_sweep(args, sweep):
    threads = None
    if args.threads is not None:
        from fastbp.errors import integer

        threads = integer("threads", args.threads, minimum=1)
    if args.dry_run:
        the_plan = sweep(
            args.spec, args.out, threads=threads, backend=args.backend, overwrite=args.overwrite, dry_run=True
        )
        print(the_plan.line())
        return 0
    summary = sweep(
        args.spec,
        args.out,
        threads=threads,
        overwrite=args.overwrite,
        progress=not args.quiet,
        backend=args.backend,
        address=args.address,
        wait=args.wait,
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

    written = plot_dataset(
        args.dataset, args.out, fmt=args.format, partial=args.partial, figures=args.figures
    )
    for path in written:
        print(path)
    return 0


def _check(args):
    """Exit 0 when the dataset is complete and sound, 1 when it is incomplete or damaged."""
    from fastbp.reading import check

    report = check(args.dataset)
    print(f"{report.path}: {report.summary()}")
    for name, why in report.damaged:
        print(f"  damaged: {name}: {why}")
    for name in report.extra:
        print(f"  beyond the grid: {name}")
    for first, last in report.missing_ranges()[:20]:
        print(f"  missing: runs {first:,}–{last:,}")
    if any(name == "_manifest.json" for name, _why in report.damaged):  # a sweep refuses to resume it
        print(
            "  (the manifest is damaged: no sweep resumes this dataset; fastbp plot --partial reads its sound shards, if any)"
        )
    elif not report.complete:
        print("  (run the same fastbp sweep command again to compute what is missing)")
    return 0 if report.complete else 1
