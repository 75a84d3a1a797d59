"""A progress bar on stderr: share of the work done, runs done, run-steps per second, time left.
No dependencies.

The runs of a shard advance together and all finish at its end, so inside a shard the bar and
its percentage move while "runs done" does not: the line says how many runs are at which step.

On a terminal it redraws one line; in a log (not a TTY) it prints a line at most every
``LOG_EVERY`` seconds and a last one at the end, so CI logs stay short.
"""

import sys
import threading
import time

LOG_EVERY = 10.0
_WIDTH = 24


def duration(seconds):
    """h:mm:ss, or ? when unknown."""
    if seconds != seconds or seconds in (float("inf"), float("-inf")):
        return "?"
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}"


class Progress:
    def __init__(self, dataset, spec, enabled=True, stream=None):
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.steps = spec.steps
        self.total = spec.n_runs
        self.done_before = sum(self._runs(dataset, s) for s in dataset.finished_shards())
        self.done = self.done_before
        self.current = 0  # run-steps done inside the shard being computed
        self.running = self.running_step = 0  # its runs, and the step they have reached
        self.dataset = dataset
        self.started = time.perf_counter()
        self.last_print = 0.0
        self.tty = enabled and hasattr(self.stream, "isatty") and self.stream.isatty()
        self.lock = threading.Lock()
        if enabled and self.done_before:
            self._write(f"resuming: {self.done_before:,} of {self.total:,} runs already done")
        self.draw(force=True)

    @staticmethod
    def _runs(dataset, shard):
        start, stop = dataset.shard_runs(shard)
        return stop - start

    def shard_done(self, shard):
        with self.lock:
            self.done += self._runs(self.dataset, shard)
            self.current = self.running = self.running_step = 0
            self.draw()

    def inside_shard(self, runs, steps_done):
        """The shard being computed has advanced ``runs`` runs by ``steps_done`` steps."""
        with self.lock:
            self.current = runs * steps_done
            self.running, self.running_step = runs, steps_done
            self.draw()

    def line(self):
        elapsed = time.perf_counter() - self.started
        new = (self.done - self.done_before) * self.steps + self.current  # run-steps since the start
        rate = new / elapsed if elapsed > 0 and new else 0.0
        left = ((self.total - self.done) * self.steps - self.current) / rate if rate else float("nan")
        fraction = (self.done + self.current / max(1, self.steps)) / self.total if self.total else 1.0
        filled = min(_WIDTH, int(_WIDTH * fraction))
        bar = "#" * filled + "-" * (_WIDTH - filled)
        eta = duration(left) if left == left else "?"
        running = f", {self.running:,} at step {self.running_step:,}/{self.steps:,}" if self.running else ""
        return (
            f"[{bar}] {int(100 * min(1.0, fraction)):3d} % · {self.done:,}/{self.total:,} runs done{running} · "
            f"{rate / 1e6:,.1f} M run-steps/s · {duration(elapsed)} elapsed · {eta} left"
        )

    def draw(self, force=False):
        if not self.enabled:
            return
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r" + self.line())
            self.stream.flush()
        elif force or now - self.last_print >= LOG_EVERY or self.done == self.total:
            self._write(self.line())
            self.last_print = now

    def _write(self, text):
        self.stream.write(text + "\n")
        self.stream.flush()

    def close(self):
        if not self.enabled:
            return
        if self.tty:
            self.stream.write("\r" + self.line() + "\n")
            self.stream.flush()
        elif self.done != self.total or time.perf_counter() - self.last_print > 0.5:
            self._write(self.line())
