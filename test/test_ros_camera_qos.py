"""Full-size camera frames from another process reach descriptor_node over real Fast DDS (issue 12, item 2).

A camera driver (realsense2_camera, orbbec, usb_cam, ...) runs in its own process and publishes RELIABLE by
default. Across processes a best-effort reader of the Kilted wheels' Fast DDS received none of the frames from
about 560 KB up (a 640x480 rgb8 frame is 921 KB, its 32FC1 depth 1.2 MB), so descriptor_node's camera
subscriptions are RELIABLE keep-last 2 by default (``camera_reliability``). A RELIABLE reader does not connect to
a BEST_EFFORT writer: the node then says so, naming the topic and the publishers' QoS.

The publisher here is a separate Python process with rclpy (its own DDS participant), as a driver would be.
"""
import os
import subprocess
import sys
import textwrap
import threading

import pytest

pytest.importorskip("rclpy")

from nodes_harness import RosGraph, isolate_ros_graph, restore_ros_env, wait_until, write_tiny_checkpoint  # noqa: E402

CAMERA = textwrap.dedent("""
    import sys, time
    import numpy as np
    import rclpy
    from rclpy.qos import QoSProfile, ReliabilityPolicy
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header
    from dense_descriptor_grasp.image_msgs import make_camera_info, numpy_to_image

    prefix, w, h, reliability, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], float(sys.argv[5])
    rclpy.init()
    node = rclpy.create_node("fake_camera_driver")
    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.RELIABLE if reliability == "reliable"
                     else ReliabilityPolicy.BEST_EFFORT)
    pubs = [node.create_publisher(Image, prefix + "/color", qos), node.create_publisher(Image, prefix + "/depth", qos),
            node.create_publisher(CameraInfo, prefix + "/info", qos)]
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    depth = np.full((h, w), 0.6, np.float32)
    K = np.array([[0.9 * w, 0, (w - 1) / 2], [0, 0.9 * w, (h - 1) / 2], [0, 0, 1]])
    print("ready", flush=True)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            header = Header(frame_id="camera_color_optical_frame", stamp=node.get_clock().now().to_msg())
            for pub, msg in zip(pubs, (numpy_to_image(rgb, "rgb8", header), numpy_to_image(depth, "32FC1", header),
                                       make_camera_info(K, w, h, header))):
                pub.publish(msg)
            time.sleep(0.2)
    except Exception:
        if rclpy.ok():       # SIGTERM shuts the context down (rclpy's handler): publishing then fails, fine
            raise
    node.destroy_node()
    rclpy.try_shutdown()
""")


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    previous = isolate_ros_graph(offset=21)
    g = RosGraph()
    g.ckpt = write_tiny_checkpoint(tmp_path_factory.mktemp("camera_qos") / "tiny.pt")
    yield g
    g.close()
    restore_ros_env(previous)


def start_camera(prefix, size, reliability, seconds=25.0):
    return subprocess.Popen([sys.executable, "-c", CAMERA, prefix, str(size[0]), str(size[1]), reliability,
                             str(seconds)], env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def stop(process):
    process.terminate()
    try:
        _, err = process.communicate(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        _, err = process.communicate()
    return err


def camera_remap(prefix, name):
    return {"__node": name, "camera/color/image_raw": f"{prefix}/color", "camera/depth/image_raw": f"{prefix}/depth",
            "camera/color/camera_info": f"{prefix}/info", "descriptors/image": f"{prefix}/descriptors/image",
            "descriptors/preview": f"{prefix}/descriptors/preview", "descriptors/depth": f"{prefix}/descriptors/depth",
            "descriptors/camera_info": f"{prefix}/descriptors/camera_info"}


def test_descriptor_node_gets_640x480_and_1280x720_from_a_reliable_driver_process(graph):
    """640x480 through the descriptor node itself (it publishes descriptor sets), 1280x720 through a
    subscription with the node's default camera QoS (every frame of a set must arrive)."""
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.nodes.common import camera_qos
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode

    prefix_vga, prefix_hd = f"vga_{os.getpid()}", f"hd_{os.getpid()}"
    cameras = [start_camera(prefix_vga, (640, 480), "reliable"), start_camera(prefix_hd, (1280, 720), "reliable")]
    try:
        node = graph.add(DescriptorNode, {"model_path": str(graph.ckpt), "input_width": 80, "input_height": 64,
                                          "output_width": 80, "output_height": 64},
                         remap=camera_remap(prefix_vga, "descriptor_node_vga"))
        sets = graph.collect(Image, f"{prefix_vga}/descriptors/image")
        hd = {"color": [], "depth": [], "info": []}
        lock = threading.Lock()

        def keep(kind):
            def on_msg(msg):
                with lock:
                    hd[kind].append((msg.width, msg.height))
            return on_msg

        qos = camera_qos()
        for kind, msg_type in (("color", Image), ("depth", Image), ("info", CameraInfo)):
            graph.node.create_subscription(msg_type, f"{prefix_hd}/{kind}", keep(kind), qos)
        ok = wait_until(lambda: len(sets) >= 2 and all(len(v) >= 3 for v in hd.values()), 25.0)
        assert ok, (f"descriptor sets {len(sets)}, node frames {node.frames}, 1280x720 arrivals "
                    f"{ {k: len(v) for k, v in hd.items()} }; node log:\n" + graph.log_text("descriptor_node_vga")[-1500:])
        assert node.frames >= 2 and (sets[0].width, sets[0].height) == (80, 64)
        assert set(hd["color"]) == {(1280, 720)} and set(hd["depth"]) == {(1280, 720)}
        assert "RELIABLE" in graph.log_text("descriptor_node_vga")          # the ready line names the QoS
        graph.remove(node)
    finally:
        errors = [stop(c) for c in cameras]
    assert not any("Traceback" in e for e in errors), errors


def test_a_best_effort_driver_is_named_in_the_log(graph):
    """A BEST_EFFORT camera cannot reach the RELIABLE default: the node logs the incompatibility and, after
    silent_input_warning s, the silent topic with its publishers' QoS and what to set."""
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode

    prefix = f"be_{os.getpid()}"
    camera = start_camera(prefix, (160, 120), "best_effort")
    try:
        node = graph.add(DescriptorNode, {"model_path": str(graph.ckpt), "silent_input_warning": 1.0},
                         remap=camera_remap(prefix, "descriptor_node_be"))
        assert graph.wait_log("descriptor_node_be", "BEST_EFFORT", 20.0), graph.log_text("descriptor_node_be")
        # the driver's node name reaches this node with DDS discovery, which can trail the QoS event under load:
        # the silent-input warning repeats (every silent_input_warning s) and names it once it is known
        assert graph.wait_log("descriptor_node_be", f"no message on /{prefix}/color", 20.0), \
            graph.log_text("descriptor_node_be")
        assert graph.wait_log("descriptor_node_be", "fake_camera_driver (BEST_EFFORT", 20.0), \
            graph.log_text("descriptor_node_be")
        text = graph.log_text("descriptor_node_be")
        assert "camera_reliability" in text and "_NODE_NAME_UNKNOWN_" not in text, text
        assert "incompatible" in text, text
        assert node.frames == 0
        graph.remove(node)
    finally:
        stop(camera)
