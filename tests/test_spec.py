"""Issue 3, the sweep spec: TOML keys, the lr forms, the grid, and the initial-weight generators.

Refusals of bad specs through the command line (exit 2, nothing written) are in
test_cli_sweep.py; here the parser's own answers and the generators' statistics.

Statistical checks use 5-sigma bounds on 20,000 runs (160,000 draws), so a correct generator
fails them with probability ~1e-6 per check, and the draws are fixed by the seed anyway: the
tests are deterministic. What they catch: a wrong range or scale, a draw reused for two weights
(correlation), an index or block that does not move the stream, weights that depend on which
runs are generated together.
"""

import math
import textwrap

import numpy as np
import pytest
from reference import COURSE_INPUTS, COURSE_TARGETS, COURSE_WEIGHTS

from fastbp.errors import SpecError  # noqa: E402
from fastbp.layout import initial_weights, run_layout  # noqa: E402
from fastbp.spec import load_spec, parse_spec  # noqa: E402

N = 20_000  # runs per statistical check


def spec_of(text):
    import tomllib

    return parse_spec(tomllib.loads(textwrap.dedent(text)))


def weights_of_block(spec, block, indices):
    indices = np.asarray(indices, dtype=np.int64)
    return initial_weights(spec, np.full(len(indices), block, dtype=np.int32), indices)


def block_spec(init, seed=0, lr="[0.5]"):
    return spec_of(f"steps = 10\nlr = {lr}\nseed = {seed}\n[[init]]\n{init}\n")


# ---------------------------------------------------------------------------------------------
# Keys and forms


def test_full_spec_from_a_toml_file(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(
        textwrap.dedent("""
        name = "all keys"
        steps = 250
        lr = [0.1, 2.0]
        dtype = "float32"
        seed = 7
        record_every = 25
        tolerance = 1e-3
        shard_size = 100

        [network]
        inputs = [0.05, 0.1]
        targets = [0.01, 0.99]

        [[init]]
        kind = "course"
        [[init]]
        kind = "uniform"
        low = -2.0
        high = 3
        count = 4
        [[init]]
        kind = "normal"
        mean = 0.5
        std = 2
        count = 3
        [[init]]
        kind = "xavier"
        count = 2
        distribution = "normal"
        [[init]]
        kind = "fixed"
        weights = [[1, 2, 3, 4, 5, 6, 7, 8], [0, 0, 0, 0, 0, 0, 0, 0]]
    """)
    )
    spec = load_spec(path)
    assert load_spec(str(path)) == spec
    assert (spec.steps, spec.lrs, spec.dtype, spec.seed) == (250, (0.1, 2.0), "float32", 7)
    assert (spec.record_every, spec.tolerance, spec.shard_size, spec.name) == (25, 1e-3, 100, "all keys")
    assert spec.inputs == (0.05, 0.1) and spec.targets == (0.01, 0.99)
    assert [b.kind for b in spec.inits] == ["course", "uniform", "normal", "xavier", "fixed"]
    assert [b.count for b in spec.inits] == [1, 4, 3, 2, 2]
    assert spec.n_inits == 12 and spec.n_runs == 24
    # The canonical form (stored in the dataset) is plain JSON data that parses back to the
    # same spec: a dataset's metadata is enough to run its sweep again.
    import json

    assert parse_spec(json.loads(json.dumps(spec.as_dict()))) == spec


def test_defaults():
    spec = spec_of('steps = 3\nlr = 0.5\n[[init]]\nkind = "course"\n')
    assert spec.lrs == (0.5,)
    assert spec.dtype == "float64" and spec.seed == 0 and spec.record_every == 1
    assert spec.shard_size is None and spec.name is None
    assert spec.inputs == COURSE_INPUTS and spec.targets == COURSE_TARGETS
    uniform = spec_of('steps = 3\nlr = 0.5\n[[init]]\nkind = "uniform"\ncount = 2\n').inits[0]
    assert (uniform.params["low"], uniform.params["high"]) == (-1.0, 1.0)
    xavier = spec_of('steps = 3\nlr = 0.5\n[[init]]\nkind = "xavier"\ncount = 2\n').inits[0]
    assert xavier.params["distribution"] == "uniform"


@pytest.mark.parametrize(
    "lr, expected",
    [
        ("0.25", [0.25]),
        ("2", [2.0]),
        ("[0.1, 0.2, 0.5]", [0.1, 0.2, 0.5]),
        ("{logspace = [-3, 1], num = 5}", [1e-3, 1e-2, 1e-1, 1.0, 10.0]),
        ("{linspace = [0.5, 2.0], num = 4}", [0.5, 1.0, 1.5, 2.0]),
        ("{logspace = [0, 0], num = 1}", [1.0]),
    ],
)
def test_lr_forms(lr, expected):
    spec = spec_of(f'steps = 3\nlr = {lr}\n[[init]]\nkind = "course"\n')
    np.testing.assert_allclose(spec.lrs, expected, rtol=1e-15)
    assert all(isinstance(x, float) for x in spec.lrs)


def test_logspace_and_linspace_are_numpys():
    spec = spec_of('steps = 3\nlr = {logspace = [-4, 1], num = 11}\n[[init]]\nkind = "course"\n')
    assert spec.lrs == tuple(np.logspace(-4, 1, 11).tolist())
    spec = spec_of('steps = 3\nlr = {linspace = [0.1, 3], num = 7}\n[[init]]\nkind = "course"\n')
    assert spec.lrs == tuple(np.linspace(0.1, 3, 7).tolist())


def test_every_lr_crossed_with_every_init_and_the_run_numbers():
    spec = spec_of("""
        steps = 3
        lr = [0.1, 0.2, 0.3]
        [[init]]
        kind = "course"
        [[init]]
        kind = "uniform"
        count = 3
        [[init]]
        kind = "fixed"
        weights = [[1, 2, 3, 4, 5, 6, 7, 8], [8, 7, 6, 5, 4, 3, 2, 1]]
    """)
    assert spec.n_inits == 6 and spec.n_runs == 18
    runs, lrs, blocks, indices = run_layout(spec, 0, spec.n_runs)
    assert runs.tolist() == list(range(18))
    # run = lr_index * n_inits + init number; inits in file order, indices restart per block
    assert lrs.tolist() == [0.1] * 6 + [0.2] * 6 + [0.3] * 6
    assert blocks.tolist() == [0, 1, 1, 1, 2, 2] * 3
    assert indices.tolist() == [0, 0, 1, 2, 0, 1] * 3
    pairs = {(lr, b, i) for lr, b, i in zip(lrs.tolist(), blocks.tolist(), indices.tolist())}
    assert len(pairs) == 18  # the full product, each once
    # any slice of runs is described identically
    r2, l2, b2, i2 = run_layout(spec, 5, 13)
    assert r2.tolist() == list(range(5, 13))
    assert (l2 == lrs[5:13]).all() and (b2 == blocks[5:13]).all() and (i2 == indices[5:13]).all()


def test_spec_errors_are_value_errors_with_field_value_and_allowed():
    with pytest.raises(SpecError) as info:
        spec_of('steps = 0\nlr = 1\n[[init]]\nkind = "course"\n')
    assert isinstance(info.value, ValueError)
    assert (info.value.field, info.value.value) == ("steps", 0)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "text, fragment",
    [
        # numbers written as strings are the wrong type in a spec file (the CLI parses strings)
        ('steps = "10"\nlr = 1', "steps"),
        ('steps = 10\nlr = "0.1"', "lr"),
        ('steps = 10\nlr = ["0.1"]', "lr[0]"),
        ('steps = 10\nlr = 1\nseed = "3"', "seed"),
        ('steps = 10\nlr = 1\nrecord_every = "2"', "record_every"),
        ('steps = 10\nlr = 1\ntolerance = "1e-3"', "tolerance"),
        ('steps = 10\nlr = {logspace = [-3, 0], num = "4"}', "lr.num"),
        ('steps = 10\nlr = 1\n[network]\ninputs = ["0.05", 0.1]', "network.inputs[0]"),
        # a logspace/linspace whose points are not all finite and > 0
        ("steps = 10\nlr = {logspace = [-3, 400], num = 3}", "lr[2]"),
        ("steps = 10\nlr = {linspace = [0, 1], num = 3}", "lr[0]"),
        ("steps = 10\nlr = {linspace = [1, 2]}", "lr"),
        ("steps = 10\nlr = {linspace = [1, 2], num = 2, logspace = [1, 2]}", "lr"),
        # float32 sweeps: values float32 cannot hold are refused, not trained as inf or 0
        ('steps = 10\nlr = 1e300\ndtype = "float32"', "lr[0]"),
        ('steps = 10\nlr = 1e-50\ndtype = "float32"', "lr[0]"),
        # steps, seed, record_every must be integers
        ("steps = 10.0\nlr = 1", "steps"),
        ("steps = 10\nlr = 1\nseed = -1", "seed"),
        ("steps = 10\nlr = 1\nrecord_every = -1", "record_every"),
        ("steps = 10\nlr = 1\ntolerance = 0", "tolerance"),
        ("steps = 10\nlr = 1\nshard_size = 0", "shard_size"),
        ("steps = 10\nlr = 1\nname = 3", "name"),
    ],
)
def test_parser_refusals(text, fragment):
    with pytest.raises(SpecError) as info:
        spec_of(text + '\n[[init]]\nkind = "course"\n')
    assert str(info.value).startswith(fragment + ":"), str(info.value)


@pytest.mark.parametrize(
    "init, fragment",
    [
        ('kind = "uniform"\ncount = 3\nlow = 1\nhigh = 1', "init[0].high"),
        ('kind = "uniform"\ncount = 3\nlow = -1e308\nhigh = 1e308', "init[0].high"),
        ('kind = "uniform"\ncount = "3"', "init[0].count"),
        ('kind = "normal"\ncount = 3\nstd = 0', "init[0].std"),
        ('kind = "normal"\ncount = 3\nmean = nan', "init[0].mean"),
        ('kind = "xavier"\ncount = 3\ndistribution = "cauchy"', "init[0].distribution"),
        ('kind = "fixed"\nweights = [1, 2, 3, 4, 5, 6, 7, 8]', "init[0].weights[0]"),
        ('kind = "fixed"\nweights = [[1, 2, 3]]', "init[0].weights[0]"),
        ('kind = "fixed"\nweights = [[1, 2, 3, 4, 5, 6, 7, inf]]', "init[0].weights[0][7]"),
        ('kind = "fixed"\nweights = []', "init[0].weights"),
        ('kind = "course"\ncount = 2', "init[0].count"),
        ('kind = "fixed"\nweights = [[1, 2, 3, 4, 5, 6, 7, 8]]\ncount = 2', "init[0].count"),
        ('kind = "course"\nlow = 1', "init[0].low"),
        ('kind = "sobol"\ncount = 3', "init[0].kind"),
        ("count = 3", "init[0].kind"),
    ],
)
def test_init_refusals(init, fragment):
    with pytest.raises(SpecError) as info:
        spec_of(f"steps = 10\nlr = 1\n[[init]]\n{init}\n")
    assert str(info.value).startswith(fragment + ":"), str(info.value)


def test_float32_spec_refuses_weights_it_cannot_hold():
    with pytest.raises(SpecError, match=r"^init\[0\]\.weights\[0\]\[0\]:.*float32"):
        spec_of(
            'steps = 1\nlr = 1\ndtype = "float32"\n[[init]]\nkind = "fixed"\n'
            "weights = [[1e39, 0, 0, 0, 0, 0, 0, 0]]\n"
        )
    # the same weights are fine in float64
    spec_of('steps = 1\nlr = 1\n[[init]]\nkind = "fixed"\nweights = [[1e39, 0, 0, 0, 0, 0, 0, 0]]\n')


# ---------------------------------------------------------------------------------------------
# Initial weights


def test_course_is_the_spec_weights():
    spec = block_spec('kind = "course"')
    w = weights_of_block(spec, 0, [0])
    assert w[:, 0].tolist() == list(COURSE_WEIGHTS)


def test_fixed_is_the_given_weights_in_order():
    rows = [[1, 2, 3, 4, 5, 6, 7, 8], [-0.5, 0.25, 0, 1e-3, 9, -9, 3.5, 0.125]]
    spec = block_spec(f'kind = "fixed"\nweights = {rows}')
    w = weights_of_block(spec, 0, [1, 0])
    assert w.T.tolist() == [rows[1], rows[0]]


@pytest.mark.parametrize("low, high", [(-1.0, 1.0), (-2.0, 3.0), (0.5, 0.75)])
def test_uniform_range_mean_variance_independence(low, high):
    spec = block_spec(f'kind = "uniform"\nlow = {low}\nhigh = {high}\ncount = {N}', seed=11)
    w = weights_of_block(spec, 0, np.arange(N))
    assert w.shape == (8, N) and w.dtype == np.float64
    assert (w >= low).all() and (w < high).all()
    width = high - low
    mean_sd = width / math.sqrt(12 * N)
    for row in w:  # each of w1..w8 on its own
        assert abs(row.mean() - (low + high) / 2) < 5 * mean_sd
        assert abs(row.var() / (width**2 / 12) - 1) < 5 * math.sqrt(0.8 / N)
    # the full range is used (not, e.g., only [low, (low+high)/2))
    assert w.min() < low + 1e-3 * width and w.max() > high - 1e-3 * width
    # the 8 weights of a run are independent draws, and consecutive runs too
    corr = np.corrcoef(w)
    assert np.abs(corr - np.eye(8)).max() < 5 / math.sqrt(N)
    assert abs(np.corrcoef(w[0, :-1], w[0, 1:])[0, 1]) < 5 / math.sqrt(N)


@pytest.mark.parametrize("mean, std", [(0.0, 1.0), (0.5, 2.0), (-3.0, 0.1)])
def test_normal_mean_std_shape(mean, std):
    spec = block_spec(f'kind = "normal"\nmean = {mean}\nstd = {std}\ncount = {N}', seed=5)
    w = weights_of_block(spec, 0, np.arange(N))
    assert np.isfinite(w).all()
    for row in w:
        assert abs(row.mean() - mean) < 5 * std / math.sqrt(N)
        assert abs(row.std() / std - 1) < 5 / math.sqrt(2 * N)
    z = (w - mean) / std
    assert abs(np.mean(np.abs(z) < 1) - 0.682689) < 5 * math.sqrt(0.6827 * 0.3173 / (8 * N))
    assert abs(np.mean(z**3)) < 5 * math.sqrt(15 / (8 * N))  # symmetric
    assert np.abs(np.corrcoef(w) - np.eye(8)).max() < 5 / math.sqrt(N)


def test_xavier_uniform_limit_is_sqrt_6_over_4():
    limit = math.sqrt(6 / 4)  # both layers are 2 -> 2: fan_in + fan_out = 4
    spec = block_spec(f'kind = "xavier"\ncount = {N}\ndistribution = "uniform"', seed=3)
    w = weights_of_block(spec, 0, np.arange(N))
    assert (w >= -limit).all() and (w < limit).all()
    assert w.max() > 0.999 * limit and w.min() < -0.999 * limit
    assert abs(w.var() / (limit**2 / 3) - 1) < 5 * math.sqrt(0.8 / (8 * N))
    assert abs(w.mean()) < 5 * limit / math.sqrt(3 * 8 * N)


def test_xavier_normal_std_is_sqrt_2_over_4():
    spec = block_spec(f'kind = "xavier"\ncount = {N}\ndistribution = "normal"', seed=3)
    w = weights_of_block(spec, 0, np.arange(N))
    assert abs(w.std() / math.sqrt(2 / 4) - 1) < 5 / math.sqrt(2 * 8 * N)
    assert abs(w.mean()) < 5 * math.sqrt(0.5 / (8 * N))


@pytest.mark.parametrize("kind", ["uniform", "normal", "xavier"])
def test_weights_depend_only_on_seed_block_and_index(kind):
    spec = block_spec(f'kind = "{kind}"\ncount = 500', seed=99)
    everything = weights_of_block(spec, 0, np.arange(500))
    # any subset, in any order, alone or with others: the same bits
    rng = np.random.default_rng(0)
    subset = rng.permutation(500)[:37]
    assert np.array_equal(weights_of_block(spec, 0, subset), everything[:, subset])
    assert np.array_equal(weights_of_block(spec, 0, [417]), everything[:, [417]])
    # a bigger block, other lrs, more steps, another dtype: the same first 500
    other = spec_of(f"""
        steps = 999
        lr = [3.0, 0.1, 7.0]
        seed = 99
        dtype = "float32"
        record_every = 0
        [[init]]
        kind = "{kind}"
        count = 4000
    """)
    assert np.array_equal(weights_of_block(other, 0, np.arange(500)), everything)
    # each run gets its own weights
    assert len({tuple(col) for col in everything.T}) == 500


def test_a_block_is_not_moved_by_the_blocks_before_it():
    one = spec_of("""
        steps = 5
        lr = 1
        seed = 4
        [[init]]
        kind = "uniform"
        count = 10
        [[init]]
        kind = "normal"
        count = 20
    """)
    other = spec_of("""
        steps = 5
        lr = 1
        seed = 4
        [[init]]
        kind = "uniform"
        count = 300
        [[init]]
        kind = "normal"
        count = 20
    """)
    assert np.array_equal(weights_of_block(one, 1, np.arange(20)), weights_of_block(other, 1, np.arange(20)))
    # but block number is part of the key: two identical blocks get different weights
    twin = spec_of("""
        steps = 5
        lr = 1
        [[init]]
        kind = "uniform"
        count = 50
        [[init]]
        kind = "uniform"
        count = 50
    """)
    a, b = weights_of_block(twin, 0, np.arange(50)), weights_of_block(twin, 1, np.arange(50))
    assert not np.isin(a, b).any()


@pytest.mark.parametrize("kind", ["uniform", "normal", "xavier"])
def test_seed_changes_the_weights(kind):
    weights = [
        weights_of_block(block_spec(f'kind = "{kind}"\ncount = 100', seed=seed), 0, np.arange(100))
        for seed in (0, 1, 2**63 + 5)
    ]
    for k in range(3):
        for j in range(k):
            assert not np.isin(weights[k], weights[j]).any()
    again = weights_of_block(block_spec(f'kind = "{kind}"\ncount = 100', seed=1), 0, np.arange(100))
    assert np.array_equal(again, weights[1])


def test_generated_weights_are_pinned():
    """Regression guard: a dataset's initial weights are reproducible across versions of fastbp.

    If the generator is ever changed on purpose, these values change, and so does every dataset
    of every spec with random inits; that must be a deliberate decision (and a schema bump).
    """
    spec = spec_of("""
        steps = 1
        lr = 1
        seed = 42
        [[init]]
        kind = "uniform"
        low = -1
        high = 1
        count = 3
        [[init]]
        kind = "normal"
        count = 2
    """)
    w = initial_weights(spec, np.array([0, 0, 1]), np.array([0, 2, 1]))
    expected = [
        [
            -0.22605144751991824,
            0.8426344500130647,
            -0.8337673178896776,
            0.2069811874751375,
            -0.003724991246000897,
            -0.6410858898001368,
            -0.8775660254009638,
            -0.3628902748309273,
        ],
        [
            0.707874936246303,
            0.758619604976801,
            0.4421555749122761,
            0.27636740374704916,
            -0.9536702147405451,
            0.9704807921238534,
            -0.6923813363520241,
            0.8199365983655946,
        ],
    ]
    assert w.T[:2].tolist() == expected
    # normal weights use the C library's log/cos: compare to 1e-15, not bits
    np.testing.assert_allclose(
        w.T[2],
        [
            0.7743924138879165,
            0.46762715926254395,
            1.9163756299312273,
            1.7405662813763467,
            0.6720471945191901,
            -0.3879996969981584,
            -0.7906594684849004,
            -2.033586034570891,
        ],
        rtol=1e-15,
    )
