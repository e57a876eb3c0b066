"""Bad inputs leave the nodes running, publish no pose and log the reason (real rclpy + Fast DDS)."""
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from nodes_harness import (D, SIZE, TIMEOUT_S, RosGraph, isolate_ros_graph, restore_ros_env,  # noqa: E402
                           write_tiny_checkpoint)

H, W = SIZE
K = np.array([[70.0, 0, (W - 1) / 2], [0, 70.0, (H - 1) / 2], [0, 0, 1]])


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    from dense_descriptor_grasp.grasping.reference import Reference, save_reference

    folder = tmp_path_factory.mktemp("nodes_bad_input")
    ckpt = write_tiny_checkpoint(folder / "tiny.pt")
    rng = np.random.default_rng(0)
    good = save_reference(folder / "ref_d8.npz", Reference("x", rng.standard_normal((3, D)), np.zeros((3, 2)),
                                                            np.zeros((3, 3))))
    other_d = save_reference(folder / "ref_d4.npz", Reference("x", rng.standard_normal((3, 4)), np.zeros((3, 2)),
                                                               np.zeros((3, 3))))
    return ckpt, good, other_d


@pytest.fixture(scope="module")
def running(files):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    ckpt, good_ref, other_ref = files
    previous = isolate_ros_graph(offset=2)
    g = RosGraph()
    quick = {"log_throttle": 0.0, "missing_input_timeout": 0.5}
    g.desc_node = g.add(DescriptorNode, {"model_path": str(ckpt), **quick})
    g.grasp_node = g.add(GraspNode, {"reference_path": str(good_ref), **quick})
    g.grasp_node_d4 = g.add(GraspNode, {"reference_path": str(other_ref), **quick},
                            remap={"__node": "grasp_node_d4", "grasp/pose": "grasp_d4/pose"})
    g.poses = g.collect(PoseStamped, "grasp/pose")
    g.poses_d4 = g.collect(PoseStamped, "grasp_d4/pose")
    g.descriptors = g.collect(Image, "descriptors/image")
    g.heatmaps = g.collect(Image, "grasp/heatmap")
    g.pub = {name: g.node.create_publisher(t, topic, 5) for name, t, topic in [
        ("color", Image, "camera/color/image_raw"), ("depth", Image, "camera/depth/image_raw"),
        ("info", CameraInfo, "camera/color/camera_info")]}
    yield g
    g.close()
    restore_ros_env(previous)


def feed(g, color=("rgb8", (H, W)), depth=("32FC1", (H, W)), info=True, depth_value=0.5, duration=1.5):
    """Publish frame sets (fresh stamps) for ``duration`` seconds; returns the stamps as (sec, nanosec)."""
    from std_msgs.msg import Header

    from dense_descriptor_grasp.image_msgs import make_camera_info, numpy_to_image

    rng = np.random.default_rng(0)
    stamps = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        header = Header(frame_id="camera_color_optical_frame", stamp=g.node.get_clock().now().to_msg())
        stamps.append((header.stamp.sec, header.stamp.nanosec))
        enc, (h, w) = color
        rgb = rng.integers(0, 256, (h, w, 3) if enc != "mono8" else (h, w), dtype=np.uint8)
        g.pub["color"].publish(numpy_to_image(rgb, enc, header))
        enc, (h, w) = depth
        if enc == "32FC1":
            g.pub["depth"].publish(numpy_to_image(np.full((h, w), depth_value, np.float32), enc, header))
        else:
            g.pub["depth"].publish(numpy_to_image(rng.integers(0, 256, (h, w, 3), dtype=np.uint8), enc, header))
        if info:
            g.pub["info"].publish(make_camera_info(K, W, H, header))
        time.sleep(0.1)
    return stamps


def feed_until(g, condition, timeout: float = TIMEOUT_S, **frames) -> tuple:
    """Publish frame sets (``feed`` keywords, 0.3 s at a time) until ``condition()`` holds or ``timeout`` passes.

    Returns ``(held, stamps)``: whether the condition held, and the stamps of every set published. The feeding
    happens here and not inside an ``assert`` (which ``python -O`` removes, side effect included).
    """
    stamps = []
    deadline = time.monotonic() + timeout
    while True:
        stamps += feed(g, duration=0.3, **frames)
        if condition():
            return True, stamps
        if time.monotonic() >= deadline:
            return False, stamps


def still_alive(g):
    """A good frame set after the bad ones still yields descriptors and a processed grasp frame."""
    n_desc, n_heat = len(g.descriptors), len(g.heatmaps)
    alive, _ = feed_until(g, lambda: len(g.descriptors) > n_desc and len(g.heatmaps) > n_heat)
    assert alive, "the nodes stopped processing frames"


@pytest.mark.parametrize("case, kwargs, node, text", [
    ("wrong colour encoding", {"color": ("mono8", (H, W))}, "descriptor_node", "colour encoding 'mono8'"),
    ("wrong depth encoding", {"depth": ("rgb8", (H, W))}, "descriptor_node", "depth encoding 'rgb8'"),
    ("size mismatch", {"depth": ("32FC1", (H // 2, W // 2))}, "descriptor_node", "colour and depth sizes differ"),
    ("missing camera info", {"info": False}, "descriptor_node", "no message on /camera/color/camera_info"),
    ("all-invalid depth", {"depth_value": float("nan")}, "grasp_node", "depth image has no valid pixel"),
])
def test_bad_input_is_dropped_with_a_logged_reason(running, case, kwargs, node, text):
    g = running
    logged, stamps = feed_until(g, lambda: text in g.log_text(node), **kwargs)
    bad_stamps = set(stamps)
    assert logged, f"{case}: no log containing {text!r}; {node} logged:\n{g.log_text(node)[-2000:]}"
    time.sleep(0.5)  # let anything in flight arrive
    # poses of the good frames of earlier cases may still arrive now: only a pose stamped like a bad frame counts
    published = {(p.header.stamp.sec, p.header.stamp.nanosec) for p in g.poses}
    assert not (published & bad_stamps), f"{case}: a pose was published for a bad frame"
    still_alive(g)


def test_reference_with_another_descriptor_dimension(running, files):
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    g = running
    refused, _ = feed_until(g, lambda: "needs 32FC4" in g.log_text("grasp_node_d4"))
    assert refused, g.log_text("grasp_node_d4")
    assert "32FC8" in g.log_text("grasp_node_d4") and not g.poses_d4
    # with the model known at startup the mismatch is refused before any frame, naming both dimensions
    ckpt, _, other_ref = files
    with pytest.raises(RuntimeError, match="D=4.*D=8"):
        g.add(GraspNode, {"reference_path": str(other_ref), "model_path": str(ckpt)},
              remap={"__node": "grasp_node_refused"})


@pytest.mark.parametrize("case", ["missing model_path", "random-bytes model_path", "empty .npz reference"])
def test_grasp_node_startup_errors_are_one_line(files, tmp_path, case):
    """Issue 12, item 7: ``grasp_node`` (the console script's main) ends with exit code 1 and one line naming the
    file, never a traceback, and never passes on torch's advice to load a file with weights_only=False."""
    import os
    import subprocess
    import sys

    _, good_ref, _ = files
    random_pt = tmp_path / "random.pt"
    random_pt.write_bytes(np.random.default_rng(0).integers(0, 256, 2048, dtype=np.uint8).tobytes())
    (tmp_path / "empty.npz").write_bytes(b"")
    params, expected = {
        "missing model_path": ({"reference_path": good_ref, "model_path": tmp_path / "missing.pt"},
                               "missing.pt"),
        "random-bytes model_path": ({"reference_path": good_ref, "model_path": random_pt},
                                    "random.pt is not a checkpoint"),
        "empty .npz reference": ({"reference_path": tmp_path / "empty.npz"}, "the file is empty"),
    }[case]
    args = [a for k, v in params.items() for a in ("-p", f"{k}:={v}")]
    env = dict(os.environ, ROS_DOMAIN_ID=str(101 + (os.getpid() * 7 + 14) % 100),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    proc = subprocess.run([sys.executable, "-m", "dense_descriptor_grasp.nodes.grasp_node", "--ros-args", *args],
                          env=env, capture_output=True, text=True, timeout=60)
    err = proc.stderr.strip()
    assert proc.returncode == 1, (proc.returncode, err)
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    assert "startup failed" in err and expected in err, err
    assert "weights_only" not in err and "arbitrary code" not in err, err
