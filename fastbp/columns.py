"""The columns of a sweep dataset: names, types, meanings, and which sweeps have them. Plain
Python (no pyarrow): the spec checks a ``columns = [...]`` key against it; ``fastbp.contract``
turns it into the Parquet schema.
"""

from dataclasses import dataclass


@dataclass(frozen=True)
class Column:
    name: str
    type: str  # int64, int32, float64, string, bool; "value": the sweep's dtype; "curve": a list of values
    meaning: str  # ("curve64": a list of float64; "params": a fixed-size list of values, one per parameter)
    nullable: bool = False
    # only in sweeps of the exercise's layers ("weights", w1 … w8), with "biases", "trained"
    # biases (on those layers), "diagnostics", a "stability" curve, or of other layers ("params")
    when: str | None = None
    since: int = 1  # the schema version that added it


BIAS_NAMES = ("b_h1", "b_h2", "b_o1", "b_o2")

COLUMNS = (
    Column("run", "int64", "run number, 0-based: rate_index * n_inits + init number (stable; see README)"),
    Column(
        "lr",
        "float64",
        "learning rate (float64 as specified; float32 sweeps train with it rounded to float32); "
        "with per-layer rates, the hidden layer's (= lr_hidden)",
    ),
    Column("lr_hidden", "float64", "learning rate of w1…w4 and the hidden biases", since=2),
    Column("lr_output", "float64", "learning rate of w5…w8 and the output biases", since=2),
    Column("init", "string", "initialisation kind of the run's [[init]] block"),
    Column("init_block", "int32", "which [[init]] block, 0-based, in spec order"),
    Column("init_index", "int64", "index of the initialisation within its block"),
    Column("grid_x", "float64", "the run's x coordinate in a grid block (null elsewhere)", True, since=2),
    Column("grid_y", "float64", "the run's y coordinate in a grid block (null elsewhere)", True, since=2),
    *(Column(f"w{k}_init", "value", f"initial w{k} (step 0)", when="weights") for k in range(1, 9)),
    *(Column(f"{b}_init", "value", f"initial {b} (step 0)", when="biases", since=2) for b in BIAS_NAMES),
    *(Column(f"w{k}", "value", f"final w{k} (after the last update)", when="weights") for k in range(1, 9)),
    *(Column(b, "value", f"final {b} (after the last update)", when="trained", since=2) for b in BIAS_NAMES),
    Column(
        "params_init",
        "params",
        "initial parameters (step 0): the weights, then the trained biases, in docs/model.md's "
        "order (metadata: parameters)",
        when="params",
        since=4,
    ),
    Column(
        "params", "params", "final parameters (after the last update), as params_init", when="params", since=4
    ),
    Column("final_loss", "value", "E_total at the last step (after the last update)"),
    Column("min_loss", "value", "lowest E_total over steps 0 … steps"),
    Column("first_step_below_tol", "int64", "first step whose E_total < tolerance; null if none", True),
    Column("overflow", "bool", "a final weight or the final loss is not finite (inf/NaN)"),
    Column("loss", "curve", "E_total at the recorded steps (metadata: recorded_steps)"),
    *(
        Column(name, type_, meaning, when="diagnostics", since=3)
        for name, type_, meaning in (
            (
                "sharpness_init",
                "float64",
                "λ_max of the Hessian of E_total at the first weights (and biases)",
            ),
            (
                "sharpness_final",
                "float64",
                "λ_max of the Hessian of E_total at the last weights (and biases)",
            ),
            (
                "stability_init",
                "float64",
                "lr·λ_max at the first weights (with per-layer rates, λ_max(P·H)); "
                "gradient descent can settle only where it is below 2",
            ),
            ("stability_final", "float64", "lr·λ_max (or λ_max(P·H)) at the last weights"),
            ("max_loss", "value", "highest E_total over steps 0 … steps (NaN values skipped)"),
            ("max_loss_step", "int64", "first step at which E_total was max_loss"),
            ("loss_increases", "int64", "steps k at which E_total rose: E_k > E_(k-1)"),
            (
                "trainability",
                "float64",
                "the published map value: −Σ v_k if trainable, +Σ 1/v_k if not, "
                "v_k = E_k / E_0 (docs/model.md 'The trainability map')",
            ),
            (
                "regime",
                "string",
                "monotone, bumpy, catapult, slow, oscillating, stuck or diverged (docs/model.md 'Regimes')",
            ),
        )
    ),
    Column(
        "stability",
        "curve64",
        "the stability number at the stability steps (metadata: stability_steps)",
        when="stability",
        since=3,
    ),
)
COLUMN_NAMES = tuple(c.name for c in COLUMNS)


def columns_of(biases=False, trained=False, diagnostics=False, stability=False, keep=None, params=False):
    """The columns of a sweep's dataset: the always-present ones, those its options add, and of
    these only ``keep`` (names, ``run`` always) when given. ``params``: a network other than the
    exercise's 2-2-2, whose parameters are two list columns (and no w1 … w8, b_h1 … columns)."""
    flags = {"weights": not params, "params": params}
    flags.update(
        {"biases": biases and not params, "trained": trained and not params, "diagnostics": diagnostics}
    )
    flags["stability"] = stability
    present = {None} | {when for when, on in flags.items() if on}
    return tuple(
        c for c in COLUMNS if c.when in present and (keep is None or c.name == "run" or c.name in keep)
    )


def spec_columns(spec, kept=True):
    """The columns of ``spec``'s dataset (all it could have when not ``kept``)."""
    families = spec.options.column_families()
    return columns_of(**families, stability=spec.stability_every > 0, keep=spec.columns if kept else None)
