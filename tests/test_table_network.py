"""The step table of any small network (docs/table.md "Any small network"): its parameters and
E_total against ``kernels.train``'s bits (the same run, stopped after k steps), its gradients
against the independent float64 reference (tests/reference.py), and the command's options."""

import csv
import io

import numpy as np
import pytest
import reference as ref

import fastbp
from fastbp import kernels
from fastbp.cli import main
from fastbp.compile_time import Variant
from fastbp.kernels_table import network_table_kernel

STEPS = 6

# Few compiled variants, each standing for several options at once.
CASES = {
    # XOR on 2-2-1, batch, a trained bias per unit (initial values after the weights), one rate
    "xor-batch-trained": dict(
        layers=(2, 2, 1),
        data="xor",
        biases="trained",
        weights=(0.3, -0.2, 0.5, 0.8, -0.4, 0.6, 0.1, -0.3, 0.2),
        lr=2.0,
    ),
    # 3-4-2 tanh hidden, linear outputs, three listed patterns, fixed biases, a rate per layer
    "tanh-linear-batch": dict(
        layers=(3, 4, 2),
        activation="tanh",
        output_activation="linear",
        inputs=((0.5, -1.0, 0.25), (0.0, 1.0, -0.5), (1.0, 0.5, 0.75)),
        targets=((0.2, -0.4), (0.9, 0.1), (-0.3, 0.6)),
        biases=(0.1, -0.2, 0.3, 0.05, -0.1, 0.2),
        lr_hidden=0.1,
        lr_output=0.05,
    ),
    # XOR on 2-3-1, online, trained biases: no gradient columns
    "xor-online": dict(
        layers=(2, 3, 1),
        data="xor",
        update="online",
        biases="trained",
        lr=1.5,
    ),
}


def patterns(case):
    if case.get("data") == "xor":
        return ref.xor_patterns()
    return [list(x) for x in case["inputs"]], [list(t) for t in case["targets"]]


def initial(case):
    """(weights, biases or None, table keywords) of a case."""
    n_in, n_hidden, n_out = case["layers"]
    n_weights = n_hidden * n_in + n_out * n_hidden
    rng = np.random.default_rng(len(case))
    drawn = case.get("biases") == "trained"
    n = n_weights + (n_hidden + n_out if drawn else 0)
    params = case.get("weights") or tuple(rng.uniform(-1, 1, n).round(3))
    weights = params[:n_weights]
    biases = params[n_weights:] if drawn else case.get("biases")
    keywords = {k: v for k, v in case.items() if k != "weights"}
    return weights, biases, dict(keywords, weights=params)


def train(case, weights, biases, steps, record_every=0):
    inputs, targets = patterns(case)
    lr = case.get("lr") or case["lr_hidden"]
    return kernels.train(
        np.array(weights, dtype=np.float64)[:, None],
        np.array([lr]),
        inputs,
        targets,
        steps,
        record_every,
        lr_output=np.array([case["lr_output"]]) if "lr_output" in case else None,
        biases=None if biases is None else np.array(biases, dtype=np.float64)[:, None],
        train_biases=case.get("biases") == "trained",
        layers=case["layers"],
        activation=case.get("activation", "sigmoid"),
        output_activation=case.get("output_activation"),
        update=case.get("update", "batch"),
    )


@pytest.mark.parametrize("name", CASES)
def test_rows_are_the_trained_runs_bits_and_the_gradients_the_references(name):
    case = CASES[name]
    weights, biases, keywords = initial(case)
    table = fastbp.step_table(steps=STEPS, **keywords)
    names = tuple(table.column_names)
    layers = case["layers"]
    trained = case.get("biases") == "trained"
    parameters = ref.parameter_names(layers, biases is not None)
    gradients = () if case.get("update") == "online" else ref.parameter_names(layers, trained)
    assert names == (*parameters, "E_total", *("dE_d" + n for n in gradients))
    values = np.column_stack([table.column(n).to_numpy() for n in names])
    assert values.shape == (STEPS, len(names)) and values.dtype == np.float64

    curve = train(case, weights, biases, STEPS, record_every=1).loss[0]
    for k in range(STEPS):
        after = train(case, weights, biases, k)
        expected = after.weights[:, 0]
        if biases is not None:
            expected = np.concatenate([expected, after.biases[:, 0]])
        assert values[k, : len(parameters)].tobytes() == expected.tobytes(), (name, k)
        assert values[k, len(parameters)].tobytes() == curve[k].tobytes(), (name, k)

    inputs, targets = patterns(case)
    act = dict(activation=case.get("activation", "sigmoid"), output_activation=case.get("output_activation"))
    for k in range(STEPS):
        row = dict(zip(names, values[k].tolist()))
        W_h, W_o, b_h, b_o = ref.split_parameters(layers, [row[n] for n in parameters], biases is not None)
        E, grads = ref.network_loss_and_gradient(layers, inputs, targets, W_h, W_o, b_h, b_o, **act)
        assert ref.rel_close(row["E_total"], E), (name, k, row["E_total"], E)
        if not gradients:
            continue
        dW_h, dW_o, db_h, db_o = grads
        want = ref.join_parameters(dW_h, dW_o, db_h, db_o) if trained else ref.join_parameters(dW_h, dW_o)
        got = [row["dE_d" + n] for n in gradients]
        # relative to the row's largest component: a sum over patterns may cancel to near 0
        scale = max(abs(g) for g in want)
        for n, g, w in zip(gradients, got, want, strict=True):
            assert ref.rel_close(g, w, atol=ref.RTOL_FLOAT64 * scale), (name, k, n, g, w)


def test_a_network_on_one_pattern_has_the_bits_of_its_one_pattern_training():
    """One pattern trains in the exercise's step (``one_pattern``); the table takes the batch
    step, the same operations: same bits."""
    case = dict(layers=(2, 2, 2), activation="tanh", inputs=((0.05, 0.1),), targets=((0.5, 0.5),), lr=0.5)
    weights = (0.15, 0.2, 0.25, 0.3, 0.4, 0.45, 0.5, 0.55)
    table = fastbp.step_table(steps=3, layers=(2, 2, 2), activation="tanh", lr=0.5)
    curve = train(case, weights, None, 3, record_every=1).loss[0]
    for k in range(3):
        row = np.array([table.column(n)[k].as_py() for n in ref.parameter_names((2, 2, 2))])
        assert row.tobytes() == train(case, weights, None, k).weights[:, 0].tobytes()
        assert table.column("E_total")[k].as_py() == curve[k]


def test_float32_rows_are_float32_training():
    case = CASES["xor-batch-trained"]
    weights, biases, keywords = initial(case)
    table = fastbp.step_table(steps=3, dtype="float32", **keywords)
    assert str(table.schema.field("E_total").type) == "float"
    inputs, targets = patterns(case)
    result = kernels.train(
        np.array(weights, dtype=np.float32)[:, None],
        np.array([case["lr"]], dtype=np.float32),
        inputs,
        targets,
        2,
        1,
        biases=np.array(biases, dtype=np.float32)[:, None],
        train_biases=True,
        layers=case["layers"],
    )
    assert table.column("E_total").to_numpy()[:3].tobytes() == result.loss[0].tobytes()


def test_the_exercise_keeps_its_table():
    """2-2-2 sigmoid on one pattern, said with the network options, is the exercise's table."""
    plain = fastbp.step_table(lr=0.5, steps=2)
    said = fastbp.step_table(lr=0.5, steps=2, layers=(2, 2, 2), data="course", update="batch")
    assert said.equals(plain) and said.num_columns == 31


def test_the_kernels_closure_holds_no_dispatcher():
    """Numba keys a cached closure by its cells' pickle; a dispatcher's differs per process."""
    from numba.core.dispatcher import Dispatcher

    variant = Variant.of(two_rates=True, layers=(2, 2, 1), patterns=2, biases=True, train_biases=True)
    cells = network_table_kernel(variant).py_func.__closure__
    assert not any(isinstance(cell.cell_contents, Dispatcher) for cell in cells)


def run(argv, capsys):
    code = main(["table", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_csv_is_the_python_table(capsys):
    argv = "--lr 2 --steps 4 --layers 2 2 1 --data xor --biases trained"
    argv += " --weights 0.3 -0.2 0.5 0.8 -0.4 0.6 0.1 -0.3 0.2"
    code, out, err = run(argv.split(), capsys)
    assert code == 0, err
    rows = list(csv.reader(io.StringIO(out)))
    expected = fastbp.step_table(steps=4, **initial(CASES["xor-batch-trained"])[2])
    assert tuple(rows[0]) == tuple(expected.column_names)
    for name, column in zip(rows[0], zip(*rows[1:], strict=True), strict=True):
        assert [float(v) for v in column] == expected.column(name).to_pylist()


def test_cli_listed_patterns_row_by_row(capsys):
    argv = "--lr 0.1 --steps 2 --layers 3 1 2 --activation tanh --output-activation linear --update online"
    argv += " --inputs 1 0 1 0 1 0 --targets 0.5 0.2 0.1 0.9 --weights 0.1 0.2 0.3 0.4 0.5 --format markdown"
    code, out, err = run(argv.split(), capsys)
    assert code == 0, err
    header = out.splitlines()[0]
    assert header.split(" | ")[-1] == "E_total |" and "dE_d" not in header


@pytest.mark.parametrize(
    "argv, option",
    [
        ("--layers 2 2", "--layers"),
        ("--layers 3 3 3 --data xor", "--data"),
        ("--layers 3 3 3 --data encoder", "--weights"),
        ("--layers 2 2 1 --data xor --weights 1 2 3", "--weights"),
        ("--layers 2 2 1 --inputs 0 0 1 1 --targets 0 1 1", "--targets"),
        ("--layers 2 2 1 --data xor --update sometimes --weights 1 2 3 4 5 6", "--update"),
        ("--activation relu", "--activation"),
    ],
)
def test_bad_network_options_are_one_line_naming_the_option(argv, option, capsys):
    code, out, err = run(["--lr", "1", "--steps", "2", *argv.split()], capsys)
    assert code == 2 and out == ""
    assert len(err.strip().splitlines()) == 1 and err.startswith(f"fastbp: error: {option}"), err


def test_chunks_carry_the_parameters():
    """Streamed a few rows at a time (as the command writes), the rows are the same bits."""
    from fastbp.table import check_table_args, table_rows

    checked = check_table_args(**dict(initial(CASES["xor-online"])[2], steps=7))
    whole = np.concatenate(list(table_rows(checked)))
    lr, steps, _, _, weights, dtype = checked[:6]
    network = checked.options.network
    options = dict(biases=checked.options.biases, train_biases=True)
    chunks = kernels.network_table_rows(lr, steps, network, weights, dtype, 3, **options)
    assert np.concatenate(list(chunks)).tobytes() == whole.tobytes() and whole.shape[0] == 7
