"""Shared pieces of the node shells: QoS profiles, parameter declaration, per-reason throttled logs,
an approximate-time synchroniser shell (over grasping.time_sync) and a "newest frame set only" worker.

Only this package's ``nodes/`` and ``bringup.py`` import rclpy.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from rcl_interfaces.msg import FloatingPointRange, IntegerRange, ParameterDescriptor, SetParametersResult
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dense_descriptor_grasp.grasping.time_sync import ApproximateTimeSynchronizer


def sensor_qos(depth: int = 2) -> QoSProfile:
    """Camera input: best effort, keep-last with a shallow depth so stale frames are dropped, not queued."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def reliable_qos(depth: int = 5) -> QoSProfile:
    """Outputs: reliable (RViz subscribes reliable; a best-effort publisher would show nothing)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def stamp_seconds(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def declare(node, name: str, default: Any, description: str, *, min_value=None, max_value=None,
            read_only: bool = False, choices: Sequence[str] = ()):
    """Declare one parameter with a descriptor (range for numbers, choices listed in the description)."""
    text = description + (f" One of {list(choices)}." if choices else "")
    kwargs = {"description": text, "read_only": read_only}
    if min_value is not None and max_value is not None:
        if isinstance(default, bool):
            pass
        elif isinstance(default, int):
            kwargs["integer_range"] = [IntegerRange(from_value=int(min_value), to_value=int(max_value), step=1)]
        elif isinstance(default, float):
            kwargs["floating_point_range"] = [FloatingPointRange(from_value=float(min_value),
                                                                 to_value=float(max_value), step=0.0)]
        kwargs["description"] += f" Range [{min_value}, {max_value}]."
    return node.declare_parameter(name, default, ParameterDescriptor(**kwargs))


class ParameterRules:
    """Checks beyond numeric ranges, for a set-parameters callback registered before declaring.

    ``choices``: name -> allowed strings; ``checks``: name -> function(value) returning an error text or "".
    """

    def __init__(self, choices: dict | None = None, checks: dict | None = None):
        self.choices = choices or {}
        self.checks = checks or {}

    def __call__(self, params) -> SetParametersResult:
        for p in params:
            if p.name in self.choices and p.value not in self.choices[p.name]:
                return SetParametersResult(successful=False,
                                           reason=f"parameter {p.name!r} must be one of {list(self.choices[p.name])}, "
                                                  f"got {p.value!r}")
            check = self.checks.get(p.name)
            if check is not None:
                error = check(p.value)
                if error:
                    return SetParametersResult(successful=False, reason=f"parameter {p.name!r}: {error}")
        return SetParametersResult(successful=True)


def odd_positive(value) -> str:
    return "" if int(value) >= 1 and int(value) % 2 == 1 else f"must be an odd number of pixels >= 1, got {value}"


class ReasonLog:
    """Throttled logging keyed by reason (each kind of problem is reported at most once per ``period``)."""

    def __init__(self, logger, period: float = 2.0):
        self.logger = logger
        self.period = float(period)
        self._last: dict[str, float] = {}
        self._lock = threading.Lock()

    def _due(self, key: str) -> bool:
        now = time.monotonic()
        with self._lock:
            if now - self._last.get(key, -1e18) < self.period:
                return False
            self._last[key] = now
            return True

    def warn(self, key: str, message: str) -> None:
        if self._due(key):
            self.logger.warning(message)

    def error(self, key: str, message: str) -> None:
        if self._due(key):
            self.logger.error(message)

    def info(self, key: str, message: str) -> None:
        if self._due(key):
            self.logger.info(message)


class ApproximateSync:
    """Approximate-time sync of ``n_inputs`` message streams for a node (message_filters is not in the Kilted
    wheels): wraps the ROS-free :class:`~dense_descriptor_grasp.grasping.time_sync.ApproximateTimeSynchronizer`
    (newest complete set within ``slop`` s, bounded queues) and remembers when each input last arrived, so the
    node can say which input is missing. ``callback(*msgs)`` runs with one message per input, in input order.
    A stamp more than 1 s older than the last one on its input (sim restart, bag loop) resets the queues.
    """

    def __init__(self, n_inputs: int, callback: Callable, queue_size: int = 5, slop: float = 0.05):
        self.n = int(n_inputs)
        self.callback = callback
        self.core = ApproximateTimeSynchronizer(self.n, slop=float(slop), queue_size=int(queue_size))
        self.last_arrival = [None] * self.n    # monotonic time of the last message per input
        self.last_stamp = [None] * self.n

    def add(self, index: int, msg) -> None:
        t = stamp_seconds(msg.header.stamp)
        self.last_arrival[index] = time.monotonic()
        if self.last_stamp[index] is not None and t < self.last_stamp[index] - 1.0:
            self.core.reset()
            self.last_stamp = [None] * self.n
        self.last_stamp[index] = t
        matched = self.core.add(index, t, msg)
        if matched is not None:
            self.callback(*matched)

    def missing_inputs(self, timeout: float) -> list[int]:
        """Inputs silent for ``timeout`` s while another input did arrive within it (empty if all silent)."""
        now = time.monotonic()
        recent = [a is not None and now - a < timeout for a in self.last_arrival]
        if not any(recent):
            return []
        return [i for i, r in enumerate(recent) if not r]


class LatestWorker:
    """Processes only the newest submitted item on a background thread (stale items are overwritten).

    So a slow consumer (inference) never builds a queue: frames that arrive while one is processed replace
    each other and only the last is processed next. ``process`` must not raise; exceptions are passed to
    ``on_error`` so the thread stays alive.
    """

    def __init__(self, process: Callable, on_error: Callable, name: str = "latest_worker"):
        self._process = process
        self._on_error = on_error
        self._item = None
        self._cond = threading.Condition()
        self._stop = False
        self.dropped = 0
        self.processed = 0
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, item) -> None:
        with self._cond:
            if self._item is not None:
                self.dropped += 1
            self._item = item
            self._cond.notify()

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._item is None and not self._stop:
                    self._cond.wait()
                if self._stop:
                    return
                item, self._item = self._item, None
            try:
                self._process(item)
            except Exception as exc:  # noqa: BLE001 - the worker must survive any frame
                self._on_error(exc)
            self.processed += 1

    def stop(self, timeout: float = 2.0) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify()
        self._thread.join(timeout)


def run_node(node_class, args=None) -> None:
    """``main`` body for a single node: spin until Ctrl-C or external shutdown, then clean up.

    A startup error (missing model or reference, out-of-range parameter) ends the process with exit code 1 and
    a one-line message instead of a traceback.
    """
    import sys

    import rclpy
    from rclpy.exceptions import InvalidParameterValueException, ParameterException
    from rclpy.executors import ExternalShutdownException

    rclpy.init(args=args)
    node = None
    code = 0
    try:
        node = node_class()
        rclpy.spin(node)
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RuntimeError, ValueError, InvalidParameterValueException, ParameterException) as exc:
        print(f"{node_class.__name__}: startup failed: {exc}", file=sys.stderr)
        code = 1
    finally:
        if node is not None:
            node.destroy_node()
        rclpy.try_shutdown()
    if code:
        sys.exit(code)
