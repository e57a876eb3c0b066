"""``train.num_threads: auto``: pick the faster of one torch thread and all cores while training, and keep checking.

On a CPU shared with other jobs, several intra-op threads can make a training step several times slower than one
thread (they wait for each other whenever another job holds a core); on a quiet machine they make it faster (2
threads on the 2-core machine: 1.33x the steps, benchmarks/results/threads_steps_ab.txt). Which one wins changes
while a run trains, so the run measures it instead of guessing:

* it trains with ``low`` (1) thread and, at growing intervals (after ``first_probe`` steps, then ``gap``, ``2 gap``,
  ... steps, at most ``max_gap``), *probes* the other setting for ``probe_steps`` steps;
* it switches when the probe's median step time (its first ``warmup`` steps left out) is below ``switch_ratio``
  times the median of the last ``probe_steps`` steps at the current setting, and goes on probing the other way.

A probe under load costs a few slow steps; the growing gaps bound that cost (about 4 % of a 15-minute run's steps at
4x slower probes) while a quiet machine gets its extra steps from the first minute.
"""
from __future__ import annotations

import argparse
import statistics
from collections import deque
from typing import Deque, List, Optional, Tuple

__all__ = ["ThreadTuner", "threads_arg"]


class ThreadTuner:
    """Which thread count each training step runs with (:meth:`threads_for`), from the step times it is given
    (:meth:`record`). Pure bookkeeping: the caller sets ``torch.set_num_threads`` and measures the time.

    Args:
        high: the other thread count (the machine's cores); ``high <= low`` disables probing.
        low: the thread count the run starts with.
    """

    def __init__(self, high: int, low: int = 1, probe_steps: int = 8, warmup: int = 2, first_probe: int = 10,
                 gap: int = 50, max_gap: int = 800, switch_ratio: float = 0.9):
        if probe_steps <= warmup:
            raise ValueError(f"ThreadTuner: probe_steps ({probe_steps}) must exceed warmup ({warmup})")
        self.low, self.high = int(low), int(high)
        self.current = self.low
        self.probe_steps, self.warmup = int(probe_steps), int(warmup)
        self.gap, self.max_gap, self.switch_ratio = int(gap), int(max_gap), float(switch_ratio)
        self.next_probe = int(first_probe)
        self.probe_end: Optional[int] = None
        self.recent: Deque[float] = deque(maxlen=self.probe_steps)
        self.probe_times: List[float] = []
        self.decisions: List[Tuple[int, int, float, float]] = []   # (step, chosen threads, current s, probe s)
        self.steps_at: dict = {}                                     # threads -> steps trained with them

    @property
    def enabled(self) -> bool:
        return self.high > self.low

    def other(self) -> int:
        return self.high if self.current == self.low else self.low

    def threads_for(self, step: int) -> int:
        """Thread count for ``step`` (1-based training step)."""
        if not self.enabled:
            return self.current
        if self.probe_end is None and step >= self.next_probe and len(self.recent) >= self.probe_steps // 2:
            self.probe_end = step + self.probe_steps - 1
            self.probe_times = []
        return self.other() if self.probe_end is not None else self.current

    def record(self, step: int, threads: int, seconds: float) -> Optional[int]:
        """The time one step took with ``threads``; returns the new thread count when a probe ends in a switch."""
        self.steps_at[int(threads)] = self.steps_at.get(int(threads), 0) + 1
        if not self.enabled:
            return None
        if self.probe_end is None:
            if threads == self.current:
                self.recent.append(float(seconds))
            return None
        self.probe_times.append(float(seconds))
        if step < self.probe_end:
            return None
        probe = statistics.median(self.probe_times[self.warmup:])
        now = statistics.median(self.recent)
        self.probe_end = None
        self.gap = min(self.gap * 2, self.max_gap)
        self.next_probe = step + self.gap
        if probe < self.switch_ratio * now:
            self.current = self.other()
            self.recent = deque(self.probe_times[self.warmup:], maxlen=self.probe_steps)
            self.decisions.append((step, self.current, now, probe))
            return self.current
        self.decisions.append((step, self.current, now, probe))
        return None


def threads_arg(value: str):
    """argparse type of ``--threads``: an integer >= 1 or ``"auto"`` (``train.num_threads``)."""
    if value == "auto":
        return value
    try:
        return int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer or 'auto', got {value!r}") from None
