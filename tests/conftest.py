"""What the whole suite shares: its markers, which tests are slow, and Numba's cache key for test code.

``make quick`` runs ``-m "not slow and not codegen"``; ``make test`` runs everything. A test is
marked either where it is written (``@pytest.mark.slow``) or in the lists below, keyed on its
module and function name; a listed name that no longer exists stops the run, so a renamed test
cannot drift into the quick run unnoticed.
"""

import os

import pytest

from fastbp import _numba_cache

MARKERS = {
    "slow": "starts processes (sweeps and CLI commands in subprocesses, Dask clusters) or compiles "
    "a matrix of kernels; make quick leaves it out",
    "codegen": "reads compiled code (LLVM IR, vector code, operation counts); make quick leaves it out",
}

# module file -> test functions (without parameters); "*" marks every test in the module.
SLOW = {
    # over 2 s each, warm: long workbooks, a variant x dtype matrix of slicings, three figure formats
    # (quick keeps their short forms: random runs, test_kernel_slices' slicings, the PNG figures)
    "test_audit.py": {"test_audit_before_and_after_importing_the_package", "test_long_correct_runs_are_ok"},
    "test_biases.py": {"test_any_slicing_gives_the_same_bits"},
    "test_benchkit.py": {"test_the_child_trains_the_parents_problem_in_the_tree_on_pythonpath"},
    "test_cli_sweep.py": {
        "test_console_command_exit_codes",
        "test_sigkill_then_the_same_command_finishes_without_redoing_shards",
    },
    "test_cli_table.py": {"test_console_script", "test_console_script_refusal_exit_code"},
    "test_dask.py": {"*"},
    "test_integrity.py": {
        "test_a_second_sweep_is_refused_while_the_first_writes",
        "test_wait_lets_the_second_sweep_run_after_the_first",
        "test_two_sweeps_started_together_on_a_new_directory",
        "test_a_waiting_sweep_of_another_spec_is_refused_once_it_gets_the_dataset",
        "test_what_another_sweep_made_while_this_one_waited_is_seen_under_the_lock",
        "test_a_sweep_waiting_on_one_that_gives_up_makes_the_dataset_itself",
    },
    "test_plots.py": {
        "test_script_writes_one_png_per_lr_headless",
        "test_no_pyplot_and_deterministic_png",
        "test_cli_plot_svg_and_pdf",
    },
    "test_plots_dynamics.py": {"test_no_pyplot"},
    "test_stop_and_limits.py": {"test_a_signal_stops_a_long_shard_at_once"},
}
CODEGEN = {
    "test_fastmath.py": {"test_exp_and_sigmoid_loops_vectorise", "test_vector_loop_check_rejects_libm_exp"},
    "test_kernels.py": {"test_block_update_loop_is_vectorised"},
    "test_kernels_sharpness.py": {"test_the_matrix_steps_are_vector_code"},
    "test_kernel_floor.py": {"test_counts_per_run_step"},
}
LISTS = {"slow": SLOW, "codegen": CODEGEN}


def pytest_configure(config):
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")


def pytest_collection_modifyitems(config, items):
    checked = set()
    for item in items:
        module = item.path.name
        function = getattr(item, "originalname", None) or item.name.split("[")[0]
        for marker, listed in LISTS.items():
            names = listed.get(module, ())
            if (marker, module) not in checked and getattr(item, "module", None) is not None:
                checked.add((marker, module))
                gone = sorted(n for n in names if n != "*" and not hasattr(item.module, n))
                if gone:
                    raise pytest.UsageError(
                        f"tests/conftest.py marks {marker} {module}::{gone[0]}, which does not exist"
                    )
            if "*" in names or function in names:
                item.add_marker(marker)


# cache=True functions written in tests/ inline fastbp's fastmath and model; Numba keys them on
# their own file only, so an edit to fastmath.py would keep serving old machine code to the very
# tests that check it. They get the key fastbp's kernels get (before any test module is imported).
_numba_cache.KEYED_DIRS.add(os.path.dirname(os.path.abspath(__file__)))
