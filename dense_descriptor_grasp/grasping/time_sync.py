"""Approximate-time synchronisation of a few message streams (e.g. colour, depth, camera info), ROS-free.

``message_filters`` is not in the ROS 2 Kilted wheels; this is the small replacement the nodes use when it does
not import. Policy (what a perception node wants when inference is slower than the camera):

- each stream keeps at most ``queue_size`` messages (the oldest is dropped first): memory never grows;
- after every ``add``, the *newest* complete set is looked for: one message per stream, all stamps within
  ``slop`` seconds of each other, with the greatest earliest stamp (ties: the tightest set);
- when a set is emitted, it and every older message in each stream are dropped, and later messages stamped at or
  before the emitted one of their stream are refused, so each stream's emitted stamps strictly increase.

Stamps are float seconds (:func:`stamp_seconds` turns a ``builtin_interfaces/Time`` or a header into one).
On a clock jump backwards (sim restart, bag loop) call :meth:`ApproximateTimeSynchronizer.reset`.

Example (in a node callback)::

    sync = ApproximateTimeSynchronizer(("color", "depth", "camera_info"), slop=0.05, queue_size=3)
    matched = sync.add("depth", stamp_seconds(msg.header), msg)
    if matched is not None:
        color, depth, info = matched
"""
from __future__ import annotations

import math
import threading
from collections.abc import Hashable, Sequence
from typing import Any

# Stamps are nanoseconds turned into float seconds: a set exactly `slop` wide must not fail on rounding.
STAMP_TOLERANCE_S = 1e-9


def stamp_seconds(stamp: Any) -> float:
    """Seconds as float from a ``builtin_interfaces/Time`` (``sec``, ``nanosec``), a header, or a number."""
    if hasattr(stamp, "stamp"):
        stamp = stamp.stamp
    if hasattr(stamp, "sec") and hasattr(stamp, "nanosec"):
        return float(stamp.sec) + float(stamp.nanosec) * 1e-9
    return float(stamp)


class ApproximateTimeSynchronizer:
    """Emits the newest set of messages, one per stream, whose stamps lie within ``slop`` seconds.

    ``streams``: stream names (any hashable, e.g. ``("color", "depth", "camera_info")``) or their count
    (names are then ``0 .. n-1``). Thread-safe (one lock), so it also works under a MultiThreadedExecutor.
    Counters: ``emitted`` (sets returned), ``dropped`` (messages discarded without being part of a set).
    """

    def __init__(self, streams: Sequence[Hashable] | int = 3, slop: float = 0.05, queue_size: int = 3):
        names = tuple(range(streams)) if isinstance(streams, int) else tuple(streams)
        if len(names) < 1 or len(set(names)) != len(names):
            raise ValueError(f"streams must be at least one unique name, got {streams!r}")
        if not (isinstance(slop, (int, float)) and math.isfinite(slop) and slop >= 0):
            raise ValueError(f"slop must be a finite number of seconds >= 0, got {slop!r}")
        if not (isinstance(queue_size, int) and queue_size >= 1):
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
        self.streams = names
        self.slop = float(slop)
        self.queue_size = queue_size
        self._index = {name: i for i, name in enumerate(names)}
        self._queues: list[list[tuple[float, Any]]] = [[] for _ in names]  # sorted by stamp, oldest first
        self._last_emitted: list[float] = [-math.inf] * len(names)
        self._lock = threading.Lock()
        self.emitted = 0
        self.dropped = 0

    def add(self, stream: Hashable, stamp: float, item: Any) -> tuple | None:
        """Queue ``item`` stamped ``stamp`` (seconds) on ``stream``; return the matched set or None.

        The set is a tuple of items in the order of ``streams``. A message stamped at or before the last
        emitted message of its stream is refused (counted in ``dropped``).
        """
        if stream not in self._index:
            raise ValueError(f"unknown stream {stream!r}: expected one of {list(self.streams)}")
        stamp = float(stamp)
        if not math.isfinite(stamp):
            raise ValueError(f"stream {stream!r}: stamp must be finite, got {stamp}")
        i = self._index[stream]
        with self._lock:
            if stamp <= self._last_emitted[i]:
                self.dropped += 1
                return None
            queue = self._queues[i]
            position = len(queue)
            while position > 0 and queue[position - 1][0] > stamp:
                position -= 1
            queue.insert(position, (stamp, item))
            if len(queue) > self.queue_size:
                del queue[0]
                self.dropped += 1
            chosen = self._newest_set()
            if chosen is None:
                return None
            for s, j in enumerate(chosen):
                self._last_emitted[s] = self._queues[s][j][0]
            items = tuple(self._queues[s][j][1] for s, j in enumerate(chosen))
            for s, j in enumerate(chosen):
                self.dropped += j  # older messages of that stream that no set used
                del self._queues[s][: j + 1]
            self.emitted += 1
            return items

    def _newest_set(self) -> list[int] | None:
        """Indices (one per stream) of the complete set with the greatest earliest stamp, or None.

        For each message taken as the set's earliest, every other stream needs a message in
        [stamp, stamp + slop]; the earliest such one keeps the set tightest. O(streams^2 * queue_size^2).
        """
        best, best_key = None, None
        window = self.slop + STAMP_TOLERANCE_S
        for pivot_stream, queue in enumerate(self._queues):
            for pivot_index, (pivot_stamp, _) in enumerate(queue):
                chosen, latest = [], pivot_stamp
                for s, other in enumerate(self._queues):
                    if s == pivot_stream:
                        chosen.append(pivot_index)
                        continue
                    j = next((k for k, (t, _) in enumerate(other) if pivot_stamp <= t <= pivot_stamp + window), None)
                    if j is None:
                        break
                    chosen.append(j)
                    latest = max(latest, other[j][0])
                else:
                    key = (pivot_stamp, -(latest - pivot_stamp))
                    if best_key is None or key > best_key:
                        best, best_key = chosen, key
        return best

    def reset(self) -> None:
        """Forget queued messages and the last emitted stamps (after a clock jump backwards)."""
        with self._lock:
            self.dropped += sum(len(q) for q in self._queues)
            self._queues = [[] for _ in self.streams]
            self._last_emitted = [-math.inf] * len(self.streams)

    def pending(self) -> dict[Hashable, list[float]]:
        """Stamps waiting in each stream's queue, oldest first (a copy)."""
        with self._lock:
            return {name: [t for t, _ in q] for name, q in zip(self.streams, self._queues)}
