"""The progress bar's line (issue 21): inside a shard its runs all advance together, so the bar and
its percentage move while "runs done" does not; the line says which runs are at which step."""

import io
import re
from types import SimpleNamespace

from fastbp.progress import Progress, duration


class _Dataset:
    """Shards of ``size`` runs; the first ``finished`` of them already written."""

    def __init__(self, size, finished=0):
        self.size, self.finished = size, finished

    def finished_shards(self):
        return list(range(self.finished))

    def shard_runs(self, shard):
        return shard * self.size, (shard + 1) * self.size


def _bar(runs=256, steps=1000, shard_size=256, finished=0):
    spec = SimpleNamespace(steps=steps, n_runs=runs)
    return Progress(_Dataset(shard_size, finished), spec, stream=io.StringIO())


def _filled(line):
    bar = re.match(r"\[([#-]+)\]", line).group(1)
    return bar.count("#") / len(bar)


def test_inside_a_shard_the_line_says_the_share_done_and_the_step_reached():
    bar = _bar()
    bar.inside_shard(256, 500)
    line = bar.line()
    assert " 50 % · 0/256 runs done, 256 at step 500/1,000 · " in line, line
    assert _filled(line) == 0.5  # the bar agrees with the percentage


def test_the_percentage_counts_finished_shards_and_the_one_in_progress():
    bar = _bar(runs=1000, steps=100, shard_size=250)
    bar.shard_done(0)
    bar.shard_done(1)
    bar.inside_shard(250, 40)  # 500 runs done, 250 runs at 40 % of their steps: 60 % of the work
    line = bar.line()
    assert " 60 % · 500/1,000 runs done, 250 at step 40/100 · " in line, line
    bar.shard_done(2)  # the shard is written: its runs count as done, no run is in progress
    line = bar.line()
    assert " 75 % · 750/1,000 runs done · " in line and "at step" not in line, line


def test_a_resumed_sweep_starts_from_the_runs_already_done():
    stream = io.StringIO()
    spec = SimpleNamespace(steps=10, n_runs=400)
    bar = Progress(_Dataset(100, finished=3), spec, stream=stream)
    assert "resuming: 300 of 400 runs already done" in stream.getvalue()
    assert " 75 % · 300/400 runs done · " in bar.line()
    bar.shard_done(3)
    bar.close()
    assert "100 % · 400/400 runs done · " in stream.getvalue().splitlines()[-1]


def test_duration():
    assert duration(3725.4) == "1:02:05"
    assert duration(float("nan")) == duration(float("inf")) == "?"
