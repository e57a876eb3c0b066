"""Images published by one rclpy node arrive at another over real Fast DDS (the ROS 2 Kilted wheels from PyPI).

Environment needed by the pip rclpy (checked on this machine, ros-kilted-rclpy 9.1.2):

- No ``RMW_IMPLEMENTATION``, no ``AMENT_PREFIX_PATH``, nothing to source: rclpy loads ``rmw_fastrtps_cpp``, the
  only RMW the wheels ship (``rclpy.get_rmw_implementation_identifier()`` says so; ``test_rmw_is_fast_dds``).
- The shared libraries are found through ``LD_LIBRARY_PATH``, which the wheels' ``ros_wheels_bootstrapper.pth``
  sets by re-executing the interpreter once at startup (it marks the new process with
  ``_ROS_WHEELS_BOOTSTRAP_COMPLETE=1``). So run Python from the venv normally: ``python -S`` (no site, no .pth)
  fails with ``ImportError: librcl_action.so``, and a child process that inherits the marker but not
  ``LD_LIBRARY_PATH`` would too. Subprocesses started with the parent's environment are fine.
- Isolation: each test run uses its own ``ROS_DOMAIN_ID`` (derived from the pid, set before ``rclpy.init``),
  ``ROS_AUTOMATIC_DISCOVERY_RANGE=LOCALHOST`` and topic names with the pid in them, so engineers running tests
  at the same time on this machine never see each other's messages (fixture ``ros_env``).
"""
import os
import subprocess
import sys
import textwrap
import time
import uuid

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")
from rclpy.context import Context  # noqa: E402
from rclpy.executors import SingleThreadedExecutor  # noqa: E402
from rclpy.qos import QoSProfile, ReliabilityPolicy  # noqa: E402
from sensor_msgs.msg import Image  # noqa: E402
from std_msgs.msg import Header  # noqa: E402

from dense_descriptor_grasp.image_msgs import image_to_numpy, numpy_to_image  # noqa: E402

ARRIVAL_TIMEOUT_S = 10.0
QOS = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE)


def _domain_id() -> int:
    """A domain id in [1, 100] derived from the pid (valid on Linux with the default DDS port mapping)."""
    return 1 + os.getpid() % 100


@pytest.fixture
def ros_env(monkeypatch):
    """Environment for an isolated ROS 2 graph; returns a unique topic prefix."""
    monkeypatch.setenv("ROS_DOMAIN_ID", str(_domain_id()))
    monkeypatch.setenv("ROS_AUTOMATIC_DISCOVERY_RANGE", "LOCALHOST")
    monkeypatch.delenv("ROS_LOCALHOST_ONLY", raising=False)  # deprecated since Jazzy: warns when set
    return f"ddg_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"


class RosParticipant:
    """One rclpy context (= one DDS participant) with one node and its own executor."""

    def __init__(self, name: str):
        self.context = Context()
        rclpy.init(context=self.context)
        self.node = rclpy.create_node(name, context=self.context)
        self.executor = SingleThreadedExecutor(context=self.context)
        self.executor.add_node(self.node)

    def close(self):
        self.executor.shutdown(timeout_sec=1.0)
        self.node.destroy_node()
        rclpy.try_shutdown(context=self.context)


@pytest.fixture
def two_participants(ros_env):
    """A publisher side and a subscriber side in separate contexts, shut down cleanly afterwards."""
    sides = []
    try:
        sides.append(RosParticipant("image_publisher"))
        sides.append(RosParticipant("image_subscriber"))
        yield sides[0], sides[1], ros_env
    finally:
        for side in sides:
            side.close()
        assert all(not side.context.ok() for side in sides)


def wait_for(condition, executor, timeout_s):
    """Spin `executor` until `condition()` is true or `timeout_s` passes; returns the condition."""
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        executor.spin_once(timeout_sec=0.05)
    return condition()


def sample_image(encoding: str, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    if encoding == "rgb8":
        return rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)
    if encoding == "16UC1":
        return rng.integers(0, 5000, (64, 80), dtype=np.uint16)
    channels = int(encoding.split("C")[-1])
    shape = (64, 80) if channels == 1 else (64, 80, channels)
    return rng.standard_normal(shape).astype(np.float32)


def test_rmw_is_fast_dds():
    assert rclpy.get_rmw_implementation_identifier() == "rmw_fastrtps_cpp"


@pytest.mark.parametrize("encoding, padded", [("32FC8", False), ("rgb8", False), ("16UC1", True), ("32FC1", True)])
def test_image_arrives_over_fast_dds_between_two_participants(two_participants, encoding, padded):
    publisher_side, subscriber_side, prefix = two_participants
    topic = f"{prefix}/image_{encoding.lower()}"
    source = sample_image(encoding, seed=11)
    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 1234, 567
    step = None
    if padded:
        step = source.shape[1] * source.dtype.itemsize * (1 if source.ndim == 2 else source.shape[2]) + 8
    msg = numpy_to_image(source, encoding, header, step=step)

    received = []
    subscriber_side.node.create_subscription(Image, topic, received.append, QOS)
    publisher = publisher_side.node.create_publisher(Image, topic, QOS)

    start = time.monotonic()
    assert wait_for(lambda: publisher.get_subscription_count() > 0, subscriber_side.executor, ARRIVAL_TIMEOUT_S), \
        f"the subscriber on {topic} was not discovered within {ARRIVAL_TIMEOUT_S} s"
    last_sent = 0.0

    def arrived():
        nonlocal last_sent
        if not received and time.monotonic() - last_sent > 0.25:  # resend: reliable QoS, but discovery may lag
            publisher.publish(msg)
            last_sent = time.monotonic()
        return bool(received)

    assert wait_for(arrived, subscriber_side.executor, ARRIVAL_TIMEOUT_S), \
        f"no {encoding} image arrived on {topic} within {ARRIVAL_TIMEOUT_S} s"
    elapsed = time.monotonic() - start
    got = received[0]
    assert isinstance(got, Image) and got is not msg
    assert (got.encoding, got.height, got.width, got.step) == (encoding, 64, 80, msg.step)
    assert got.header.frame_id == "camera_color_optical_frame"
    assert (got.header.stamp.sec, got.header.stamp.nanosec) == (1234, 567)
    np.testing.assert_array_equal(image_to_numpy(got), source)
    assert elapsed < ARRIVAL_TIMEOUT_S


PUBLISHER_SCRIPT = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import Image
    from dense_descriptor_grasp.image_msgs import numpy_to_image

    topic, seed, seconds = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    rclpy.init()
    node = rclpy.create_node("subprocess_image_publisher")
    pub = node.create_publisher(Image, topic, QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE))
    array = np.random.default_rng(seed).standard_normal((64, 80, 8)).astype(np.float32)
    msg = numpy_to_image(array, "32FC8")
    msg.header.frame_id = "from_another_process"
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            if pub.get_subscription_count() > 0:
                pub.publish(msg)
            time.sleep(0.1)
    finally:
        node.destroy_node()
        rclpy.try_shutdown()
""")


def test_image_arrives_from_another_process(ros_env):
    """A publisher in a separate Python process (its own DDS participant, inherits the test's env)."""
    topic = f"{ros_env}/descriptors"
    process = subprocess.Popen([sys.executable, "-c", PUBLISHER_SCRIPT, topic, "5", "30"],
                               env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    side = RosParticipant("cross_process_subscriber")
    received = []
    try:
        side.node.create_subscription(Image, topic, received.append, QOS)
        arrived = wait_for(lambda: bool(received) or process.poll() is not None, side.executor,
                           ARRIVAL_TIMEOUT_S + 10.0)  # + python and rclpy start-up of the child
    finally:
        side.close()
        process.terminate()
        _, stderr = process.communicate(timeout=10)
    assert arrived and received, f"nothing arrived on {topic}; publisher stderr:\n{stderr.decode(errors='replace')}"
    expected = np.random.default_rng(5).standard_normal((64, 80, 8)).astype(np.float32)
    assert received[0].header.frame_id == "from_another_process"
    np.testing.assert_array_equal(image_to_numpy(received[0]), expected)


def test_rclpy_inits_again_after_the_tests_shut_down(ros_env):
    """The fixtures leave no context behind: the default context can be initialised and shut down again."""
    for _ in range(2):
        rclpy.init()
        try:
            assert rclpy.ok()
            node = rclpy.create_node("reinit_check")
            node.destroy_node()
        finally:
            rclpy.shutdown()
        assert not rclpy.ok()
