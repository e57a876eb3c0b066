"""Large 32FC16 descriptor images reach a keep-last-1 reader over real Fast DDS (no mocks), with the package's QoS.

descriptor_node publishes ``descriptors/image`` reliable keep-last 2 (``reliable_qos(2)``); grasp_node reads it
reliable keep-last 1 (``reliable_qos(1)``) next to small messages. These tests publish 20 images of 320x240x16
floats (4.9 MB) at 5 Hz, each with a small CameraInfo, and count what arrives:

- in one process and one context, as ``bringup`` and the demo run the nodes (one DDS participant: Fast DDS
  delivers intra-process, so the builtin transports - shared memory, UDP, ``FASTDDS_BUILTIN_TRANSPORTS`` - are
  not used at all);
- from another process (its own participant: shared memory / UDP on this host), as ``grasp.launch.py`` runs them.

Measured on this 2-core machine (``/tmp``-style repro, 10 s runs at 5-7 Hz): one process 0 of 40-70 lost at
160x120x16, 320x240x16 and 640x480x64 (78 MB) with the default transports (UDPv4 only and LARGE_DATA: same at 4.9 MB); two
processes 0 lost in most runs at 1.2 and 4.9 MB, and when the machine was loaded 10-21 % of the big *and* 6-20 % of
the small messages (the keep-last-1 reader keeps only the newest while the executor is stalled), with the default
transports and with ``FASTDDS_BUILTIN_TRANSPORTS=LARGE_DATA`` alike. The assertions leave room for such stalls
(>= 75 % must arrive, and the big images must not go missing while the small ones arrive).
"""
import os
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

rclpy = pytest.importorskip("rclpy")

from nodes_harness import isolate_ros_graph, restore_ros_env, wait_until  # noqa: E402

N_IMAGES = 20
RATE_HZ = 5.0
SHAPE = (240, 320, 16)     # 4.9 MB of float32, the 320x240 D=16 descriptor image
MIN_FRACTION = 0.75

PUBLISHER = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rclpy
    from sensor_msgs.msg import CameraInfo, Image
    from dense_descriptor_grasp.image_msgs import numpy_to_image
    from dense_descriptor_grasp.nodes.common import reliable_qos

    prefix, n, rate, h, w, d = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), *map(int, sys.argv[4:7])
    rclpy.init()
    node = rclpy.create_node("large_image_publisher")
    pub = node.create_publisher(Image, prefix + "/descriptors/image", reliable_qos(2))
    pub_info = node.create_publisher(CameraInfo, prefix + "/descriptors/camera_info", reliable_qos(2))
    msg = numpy_to_image(np.random.default_rng(3).standard_normal((h, w, d)).astype(np.float32), f"32FC{d}")
    deadline = time.monotonic() + 30
    while (pub.get_subscription_count() == 0 or pub_info.get_subscription_count() == 0) \\
            and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)
    for i in range(n):
        msg.header.frame_id = str(i)
        pub.publish(msg)
        pub_info.publish(CameraInfo(header=msg.header))
        time.sleep(1.0 / rate)
    time.sleep(2.0)
    node.destroy_node()
    rclpy.try_shutdown()
""")


class Counter:
    """Subscriptions with grasp_node's input QoS; records which indices arrived and when."""

    def __init__(self, node, prefix):
        from sensor_msgs.msg import CameraInfo, Image

        from dense_descriptor_grasp.nodes.common import reliable_qos

        self.images, self.infos, self.image_times = set(), set(), []
        self.lock = threading.Lock()
        node.create_subscription(Image, f"{prefix}/descriptors/image", self._on_image, reliable_qos(1))
        node.create_subscription(CameraInfo, f"{prefix}/descriptors/camera_info", self._on_info, reliable_qos(1))

    def _on_image(self, msg):
        with self.lock:
            self.images.add(int(msg.header.frame_id))
            self.image_times.append(time.monotonic())
        assert msg.height * msg.width * 16 * 4 == len(msg.data)

    def _on_info(self, msg):
        with self.lock:
            self.infos.add(int(msg.header.frame_id))

    def check(self, where):
        with self.lock:
            images, infos = len(self.images), len(self.infos)
        text = f"{where}: {images}/{N_IMAGES} 32FC16 images and {infos}/{N_IMAGES} camera_infos arrived"
        assert images >= MIN_FRACTION * N_IMAGES, text
        # the symptom seen in the demo: big images missing while the small messages arrive
        assert images >= infos - 2, text
        return text


@pytest.fixture
def graph():
    """An isolated ROS graph: one context, the executor bringup uses spinning it."""
    from rclpy.context import Context

    from dense_descriptor_grasp.nodes.common import pipeline_executor

    previous = isolate_ros_graph(offset=11)
    context = Context()
    rclpy.init(context=context)
    executor = pipeline_executor(context)
    nodes = []

    def add(name):
        node = rclpy.create_node(name, context=context)
        nodes.append(node)
        executor.add_node(node)
        return node

    thread = threading.Thread(target=executor.spin, daemon=True)
    thread.start()
    try:
        yield add, f"ddg_large_{os.getpid()}"
    finally:
        executor.shutdown(timeout_sec=2.0)
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        thread.join(5.0)
        restore_ros_env(previous)


def test_large_descriptor_images_arrive_within_one_process(graph):
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.image_msgs import numpy_to_image
    from dense_descriptor_grasp.nodes.common import reliable_qos

    add, prefix = graph
    publisher_node, subscriber_node = add("large_image_publisher"), add("large_image_subscriber")
    counter = Counter(subscriber_node, prefix)
    pub = publisher_node.create_publisher(Image, f"{prefix}/descriptors/image", reliable_qos(2))
    pub_info = publisher_node.create_publisher(CameraInfo, f"{prefix}/descriptors/camera_info", reliable_qos(2))
    assert wait_until(lambda: pub.get_subscription_count() > 0 and pub_info.get_subscription_count() > 0, 10.0)
    msg = numpy_to_image(np.random.default_rng(3).standard_normal(SHAPE).astype(np.float32), "32FC16")
    for i in range(N_IMAGES):   # from a plain thread, like descriptor_node's worker
        msg.header.frame_id = str(i)
        pub.publish(msg)
        pub_info.publish(CameraInfo(header=msg.header))
        time.sleep(1.0 / RATE_HZ)
    wait_until(lambda: len(counter.images) >= N_IMAGES and len(counter.infos) >= N_IMAGES, 3.0)
    print(counter.check("one process"))


def test_large_descriptor_images_arrive_from_another_process(graph):
    add, prefix = graph
    counter = Counter(add("large_image_subscriber"), prefix)
    process = subprocess.Popen([sys.executable, "-c", PUBLISHER, prefix, str(N_IMAGES), str(RATE_HZ),
                                *map(str, SHAPE)], env=dict(os.environ), stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE)
    try:
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr.decode(errors="replace")
    wait_until(lambda: len(counter.images) >= N_IMAGES and len(counter.infos) >= N_IMAGES, 2.0)
    print(counter.check("two processes"))
