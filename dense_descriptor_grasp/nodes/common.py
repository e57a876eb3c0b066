"""Shared pieces of the node shells: QoS profiles, parameter declaration from :class:`SettingSpec` tables, the
node bases (:class:`PipelineNode` for all three nodes, :class:`SyncedInputNode` for the two processing nodes),
per-reason throttled logs, an approximate-time synchroniser shell (over grasping.time_sync) and a "newest frame
set only" worker.

Only this package's ``nodes/`` and ``bringup.py`` import rclpy. Longer than 400 lines on purpose: it is the one
home of what the node shells share (issue 13, finding 6), each part small and used by several nodes.
"""
from __future__ import annotations

import threading
import time
from typing import Any, Callable, Sequence

from rcl_interfaces.msg import (FloatingPointRange, IntegerRange, ParameterDescriptor, ParameterType,
                                SetParametersResult)
from rclpy.node import Node
from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy

from dense_descriptor_grasp.grasping.grasp_estimate import SettingSpec
from dense_descriptor_grasp.grasping.time_sync import ApproximateTimeSynchronizer

# camera_reliability parameter value -> policy (the camera subscriptions of descriptor_node)
CAMERA_RELIABILITY = {"reliable": ReliabilityPolicy.RELIABLE, "best_effort": ReliabilityPolicy.BEST_EFFORT}

# ROS parameter type -> the name a user reads in a refusal ("expected double, got integer")
PARAMETER_TYPE_NAMES = {
    ParameterType.PARAMETER_NOT_SET: "not set", ParameterType.PARAMETER_BOOL: "bool",
    ParameterType.PARAMETER_INTEGER: "integer", ParameterType.PARAMETER_DOUBLE: "double",
    ParameterType.PARAMETER_STRING: "string", ParameterType.PARAMETER_BYTE_ARRAY: "byte array",
    ParameterType.PARAMETER_BOOL_ARRAY: "bool array", ParameterType.PARAMETER_INTEGER_ARRAY: "integer array",
    ParameterType.PARAMETER_DOUBLE_ARRAY: "double array", ParameterType.PARAMETER_STRING_ARRAY: "string array",
}

_UNKNOWN_NODE_NAME = "_NODE_NAME_UNKNOWN_"   # rmw's node name of an endpoint whose participant is not discovered yet


def sensor_qos(depth: int = 2) -> QoSProfile:
    """Best effort, keep-last with a shallow depth (the sensor-data profile). Not the camera default any more:
    across processes a best-effort reader of the Kilted wheels' Fast DDS loses frames from about 560 KB up
    (a 640x480 rgb8 frame is 921 KB); see :func:`camera_qos`."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.BEST_EFFORT,
                      durability=DurabilityPolicy.VOLATILE)


def camera_qos(reliability: str = "reliable", depth: int = 2) -> QoSProfile:
    """Camera input of descriptor_node: keep-last ``depth`` (stale frames are replaced, never queued: a reliable
    keep-last reader does not block the writer), volatile, RELIABLE by default.

    RELIABLE because (1) the common drivers publish reliable by default (realsense2_camera, orbbec, usb_cam,
    image_transport publishers, ros_gz_bridge) and (2) a best-effort reader receives nothing of full-size frames
    from another process here. A RELIABLE reader does not connect to a BEST_EFFORT writer: for a driver that
    publishes best effort (the sensor-data profile), set ``camera_reliability: best_effort`` (or the per-topic
    ``qos_overrides``); the node logs the incompatibility naming the topic.
    """
    if reliability not in CAMERA_RELIABILITY:
        raise ValueError(f"camera reliability must be one of {list(CAMERA_RELIABILITY)}, got {reliability!r}")
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=int(depth), reliability=CAMERA_RELIABILITY[reliability],
                      durability=DurabilityPolicy.VOLATILE)


def reliable_qos(depth: int = 5) -> QoSProfile:
    """Outputs: reliable (RViz subscribes reliable; a best-effort publisher would show nothing)."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=depth, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.VOLATILE)


def stamp_seconds(stamp) -> float:
    return float(stamp.sec) + 1e-9 * float(stamp.nanosec)


def declare_spec(node, spec: SettingSpec):
    """Declare the parameter ``spec`` describes (default, description, range, choices, read-only)."""
    return declare(node, spec.name, spec.default, spec.description, min_value=spec.min_value,
                   max_value=spec.max_value, read_only=spec.read_only, choices=spec.choices)


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


LOG_THROTTLE = SettingSpec("log_throttle", 2.0, "Seconds between repeated logs of the same problem (applied at "
                           "runtime).", 0.0, 60.0)


class PipelineNode(Node):
    """Base of the package's nodes: parameters declared from a :class:`SettingSpec` table and changed through ONE
    set-parameters callback that validates the whole change, then applies it.

    The callback checks each changed value against its spec (type, range, choices, odd windows) and
    ``extra_checks`` (name -> function(value) returning an error text or ""), then, once the node has started
    (:meth:`_finish_startup`), calls :meth:`_apply_change`, which must validate everything before it changes
    anything (raise ``ValueError`` to refuse). A single callback because rclpy runs set-parameter callbacks newest
    first: a second "apply" callback would apply before the rules refused (issue 12, item 1).

    Also: a refusal for a wrong type names the types (rclpy says "Wrong parameter type, expected '3' got '4'");
    at startup, keys of the node's params-file block that are not parameters of the node are warned about
    (rclpy ignores them silently); ``log_throttle`` (when in the table) applies at runtime.
    """

    def __init__(self, node_name: str, parameters: Sequence[SettingSpec], extra_checks: dict | None = None,
                 **kwargs):
        super().__init__(node_name, **kwargs)
        self._parameter_specs = {spec.name: spec for spec in parameters}
        self._extra_checks = dict(extra_checks or {})
        self._parameters_ready = False
        self.log = ReasonLog(self.get_logger(), LOG_THROTTLE.default)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        for spec in parameters:
            declare_spec(self, spec)
        if LOG_THROTTLE.name in self._parameter_specs:
            self.log.period = float(self.param(LOG_THROTTLE.name))

    def param(self, name: str):
        return self.get_parameter(name).value

    # ------------------------------------------------------------------ parameter changes
    def _on_set_parameters(self, params) -> SetParametersResult:
        for p in params:
            spec = self._parameter_specs.get(p.name)
            error = spec.check(p.value) if spec is not None else ""
            if not error and p.name in self._extra_checks:
                error = self._extra_checks[p.name](p.value)
            if error:
                reason = error if error.startswith(p.name) else f"{p.name} {error}"
                return SetParametersResult(successful=False, reason=f"parameter {p.name!r}: {reason}")
        if self._parameters_ready:   # while declaring, the values are only checked (the node reads them itself)
            changes = {p.name: p.value for p in params}
            try:
                self._apply_change(changes)
            except (ValueError, TypeError) as exc:
                return SetParametersResult(successful=False, reason=str(exc))
            if LOG_THROTTLE.name in changes:
                self.log.period = float(changes[LOG_THROTTLE.name])
        return SetParametersResult(successful=True)

    def _apply_change(self, changes: dict) -> None:
        """Validate an accepted-so-far change as a whole, then apply it (subclasses; raise ValueError to refuse
        before changing anything)."""

    def set_parameters(self, parameter_list):
        results = super().set_parameters(parameter_list)
        return [self._name_the_types([p], r) for p, r in zip(parameter_list, results)]

    def set_parameters_atomically(self, parameter_list):
        # the parameter services (ros2 param set) call this one
        return self._name_the_types(parameter_list, super().set_parameters_atomically(parameter_list))

    def _name_the_types(self, params, result: SetParametersResult) -> SetParametersResult:
        if result.successful or not result.reason.startswith("Wrong parameter type"):
            return result
        for p in params:
            if not self.has_parameter(p.name):
                continue
            expected, got = self.describe_parameter(p.name).type, p.type_.value
            if expected != got:
                hint = (f" (write {float(p.value)!r})" if (expected, got) == (ParameterType.PARAMETER_DOUBLE,
                                                                              ParameterType.PARAMETER_INTEGER) else "")
                return SetParametersResult(
                    successful=False,
                    reason=f"parameter {p.name!r}: wrong type, expected {PARAMETER_TYPE_NAMES.get(expected, expected)}"
                           f", got {PARAMETER_TYPE_NAMES.get(got, got)} {p.value!r}{hint}")
        return result

    # ------------------------------------------------------------------ startup
    def unknown_parameter_overrides(self) -> list[str]:
        """Names set for this node (its params-file block, ``/**``, ``-p``, constructor overrides) that it does
        not declare: rclpy drops them silently (``allow_undeclared_parameters=False``)."""
        overrides = getattr(self, "_parameter_overrides", None) or {}
        return sorted(name for name in overrides if not self.has_parameter(name))

    def _finish_startup(self) -> None:
        """End of the subclass ``__init__``: from now on accepted changes are applied; unknown keys are warned."""
        self._parameters_ready = True
        unknown = self.unknown_parameter_overrides()
        if unknown:
            known = sorted(self._parameter_specs)
            self.get_logger().warning(
                f"ignored unknown parameter(s) {unknown} (a typo in the params file?): {self.get_name()} has "
                f"{known}")


def synced_input_specs(sync_slop: float) -> tuple[SettingSpec, ...]:
    """The parameters both processing nodes declare for their synchronised inputs."""
    return (
        SettingSpec("sync_slop", sync_slop, "Approximate time sync: max stamp difference (s) within a set (startup "
                    "only).", 0.0, 1.0, read_only=True),
        SettingSpec("sync_queue_size", 5, "Approximate time sync: messages kept per input (startup only).", 1, 100,
                    read_only=True),
        SettingSpec("missing_input_timeout", 2.0, "Warn when one input stays silent this long while the others "
                    "arrive (s).", 0.1, 60.0),
        SettingSpec("silent_input_warning", 10.0, "Warn (every this many s) about an input topic that delivered "
                    "nothing for this long, naming its publishers and their QoS.", 1.0, 3600.0),
        LOG_THROTTLE,
    )


def _qos_text(qos) -> str:
    return (f"{qos.reliability.name} {qos.durability.name} "
            f"{qos.history.name.lower().replace('_', '-')} {qos.depth}")


class SyncedInputNode(PipelineNode):
    """Base of descriptor_node and grasp_node: three inputs, approximately synchronised; each complete set goes to
    a :class:`LatestWorker` (``_process(frame)``, newest set only). Logs (throttled): an input missing while the
    others arrive; an input silent for ``silent_input_warning`` s, with its publishers and their QoS; a publisher
    whose QoS cannot connect (e.g. BEST_EFFORT writer, RELIABLE reader)."""

    INPUTS_TEXT = "inputs"            # "... while the other <INPUTS_TEXT> arrive"
    MISSING_CONSEQUENCE = ""          # what the node does not publish meanwhile
    QOS_HINT = "use the qos_overrides parameters of this node's subscriptions"

    def _start_inputs(self, topics: Sequence[str], msg_types: Sequence, qos: QoSProfile, worker_name: str) -> None:
        from functools import partial

        from rclpy.event_handler import SubscriptionEventCallbacks
        from rclpy.qos_overriding_options import QoSOverridingOptions

        self.topics = tuple(topics)
        self.sync = ApproximateSync(len(self.topics), self._on_frame_set, self.param("sync_queue_size"),
                                    self.param("sync_slop"))
        self._started_at = time.monotonic()
        self._silence_log = ReasonLog(self.get_logger(), self.param("silent_input_warning"))
        overrides = QoSOverridingOptions.with_default_policies()
        self.input_subscriptions = [
            self.create_subscription(
                msg_type, topic, partial(self._on_input, index), qos, qos_overriding_options=overrides,
                event_callbacks=SubscriptionEventCallbacks(incompatible_qos=partial(self._on_incompatible_qos,
                                                                                    index)))
            for index, (topic, msg_type) in enumerate(zip(self.topics, msg_types))]
        self.worker = LatestWorker(self._process, self._on_worker_error, worker_name)
        self.create_timer(0.5, self._check_inputs)

    # ------------------------------------------------------------------ callbacks (never raise)
    def _on_input(self, index: int, msg) -> None:
        try:
            self.sync.add(index, msg)
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed stamp
            self.log.warn("sync", f"message on {self.resolve_topic_name(self.topics[index])} dropped by the time "
                                  f"synchroniser: {type(exc).__name__}: {exc}")

    def _on_frame_set(self, *msgs) -> None:
        self.worker.submit(msgs)

    def _on_incompatible_qos(self, index: int, info) -> None:
        try:
            topic = self.resolve_topic_name(self.topics[index])
            qos = self.input_subscriptions[index].qos_profile
            self.log.warn(f"incompatible_qos_{index}",
                          f"a publisher of {topic} cannot connect: its QoS is incompatible with this node's "
                          f"subscription ({_qos_text(qos)}; policy {info.last_policy_kind.name}); publishers: "
                          f"{self.publishers_text(topic)}; {self.QOS_HINT}")
        except Exception as exc:  # noqa: BLE001
            self.log.error("qos_event", f"QoS event: {exc}")

    def publishers_text(self, topic: str) -> str:
        """The publishers of ``topic`` with their QoS, e.g. ``/camera/driver (BEST_EFFORT VOLATILE keep-last 5)``; a
        publisher whose node the ROS graph has not discovered yet (rmw says ``_NODE_NAME_UNKNOWN_``) is named so;
        the repeated silent-input warning names it once discovery completes."""
        infos = self.get_publishers_info_by_topic(topic)
        if not infos:
            return "none"

        def name(info) -> str:
            if info.node_name == _UNKNOWN_NODE_NAME:
                return "(a node not discovered yet)"
            return f"{info.node_namespace.rstrip('/')}/{info.node_name}"

        return ", ".join(f"{name(info)} ({_qos_text(info.qos_profile)})" for info in infos)

    def _check_inputs(self) -> None:
        try:
            missing = self.sync.missing_inputs(self.param("missing_input_timeout"))
            if missing:
                names = ", ".join(self.resolve_topic_name(self.topics[i]) for i in missing)
                self.log.warn("missing_input", f"no message on {names} while the other {self.INPUTS_TEXT} arrive; "
                                               f"{self.MISSING_CONSEQUENCE}")
            self._warn_silent_inputs()
        except Exception as exc:  # noqa: BLE001
            self.log.error("check_inputs", f"input check failed: {exc}")

    def _warn_silent_inputs(self) -> None:
        limit = float(self.param("silent_input_warning"))
        self._silence_log.period = limit
        now = time.monotonic()
        for index, topic in enumerate(self.topics):
            last = self.sync.last_arrival[index]
            silent = now - (self._started_at if last is None else last)
            if silent < limit:
                continue
            name = self.resolve_topic_name(topic)
            qos = self.input_subscriptions[index].qos_profile
            text = (f"no message on {name} for {silent:.0f} s; publishers: {self.publishers_text(name)}; this node "
                    f"subscribes {_qos_text(qos)}")
            infos = self.get_publishers_info_by_topic(name)
            if qos.reliability == ReliabilityPolicy.RELIABLE and any(
                    i.qos_profile.reliability == ReliabilityPolicy.BEST_EFFORT for i in infos):
                text += f"; a BEST_EFFORT publisher never delivers to a RELIABLE subscription: {self.QOS_HINT}"
            self._silence_log.warn(f"silent_{index}", text)

    def _on_worker_error(self, exc: Exception) -> None:
        if not self.context.ok():  # shutting down: publishers are gone, nothing to report
            return
        self.log.error("unexpected", f"frame dropped after an unexpected error: {type(exc).__name__}: {exc}")

    def _process(self, frame) -> None:
        raise NotImplementedError

    def destroy_node(self):
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.stop()
        return super().destroy_node()


EXECUTORS = ("single", "multi")


def pipeline_executor(context=None, kind: str = "single"):
    """The executor that spins several of this package's nodes in one process (``bringup``, the demo, the
    pipeline benchmark): ``"single"`` (default) a ``SingleThreadedExecutor``, ``"multi"`` a
    ``MultiThreadedExecutor(num_threads=4)``.

    One thread serves every callback because the nodes keep heavy work off the executor (descriptor_node runs
    inference on its own worker thread), as each node does alone under ``rclpy.spin`` in ``grasp.launch.py``.
    rclpy 9.1's MultiThreadedExecutor re-yields callbacks that wait in its thread pool and then spins without
    waiting, holding the GIL (ros2/rclpy#1452, fixed upstream by ros2/rclpy#1547): in one CI run, with the sim
    camera at 30 Hz in the same process, it took a whole core and starved descriptor_node's inference thread (1 s
    per 64x48 frame instead of 23 ms). It does not happen every run; ``benchmarks.node_pipeline --executor multi``
    compares the two.
    """
    from rclpy.executors import MultiThreadedExecutor, SingleThreadedExecutor

    if kind not in EXECUTORS:
        raise ValueError(f"executor: expected one of {list(EXECUTORS)}, got {kind!r}")
    if kind == "multi":
        return MultiThreadedExecutor(num_threads=4, context=context)
    return SingleThreadedExecutor(context=context)


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
