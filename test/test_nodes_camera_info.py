"""Issue 12, item 4: descriptor sets the grasp node refuses (real rclpy + Fast DDS).

A grasp_node alone is fed descriptor sets directly on ``descriptors/*``: a set whose reference descriptor sits at
one pixel on flat 0.5 m depth gives a pose; the same set with a camera_info of another size, absurd intrinsics
or an empty ``header.frame_id`` is dropped with a logged reason naming it, no pose goes out for it, and the next
good set still gives a pose.
"""
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from nodes_harness import D, SIZE, TIMEOUT_S, RosGraph, isolate_ros_graph, restore_ros_env, wait_until  # noqa: E402

H, W = SIZE
K = np.array([[70.0, 0, (W - 1) / 2], [0, 70.0, (H - 1) / 2], [0, 0, 1]])
MATCH_UV = (50, 30)
FRAME = "camera_color_optical_frame"


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.grasping.reference import Reference, save_reference
    from dense_descriptor_grasp.nodes.common import reliable_qos
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    rng = np.random.default_rng(0)
    ref_desc = rng.standard_normal((1, D))
    path = save_reference(tmp_path_factory.mktemp("nodes_camera_info") / "ref.npz",
                          Reference("x", ref_desc, np.zeros((1, 2)), np.zeros((1, 3))))
    previous = isolate_ros_graph(offset=23)
    g = RosGraph()
    g.grasp_node = g.add(GraspNode, {"reference_path": str(path), "use_object_pose": False, "log_throttle": 0.0})
    g.poses = g.collect(PoseStamped, "grasp/pose")
    g.heatmaps = g.collect(Image, "grasp/heatmap")
    qos = reliable_qos(5)
    g.pub = {"image": g.node.create_publisher(Image, "descriptors/image", qos),
             "depth": g.node.create_publisher(Image, "descriptors/depth", qos),
             "info": g.node.create_publisher(CameraInfo, "descriptors/camera_info", qos)}
    desc = rng.standard_normal((H, W, D)).astype(np.float32)
    desc[MATCH_UV[1], MATCH_UV[0]] = ref_desc[0] * 3.0
    g.desc = desc
    yield g
    g.close()
    restore_ros_env(previous)


def feed(g, duration=0.3, info_size=(W, H), info_K=K, frame_id=FRAME):
    """Publish descriptor sets (fresh stamps) for ``duration`` seconds; returns their stamps as (sec, nanosec)."""
    from std_msgs.msg import Header

    from dense_descriptor_grasp.image_msgs import make_camera_info, numpy_to_image

    stamps = []
    end = time.monotonic() + duration
    while time.monotonic() < end:
        header = Header(frame_id=frame_id, stamp=g.node.get_clock().now().to_msg())
        stamps.append((header.stamp.sec, header.stamp.nanosec))
        g.pub["image"].publish(numpy_to_image(g.desc, f"32FC{D}", header))
        g.pub["depth"].publish(numpy_to_image(np.full((H, W), 0.5, np.float32), "32FC1", header))
        g.pub["info"].publish(make_camera_info(info_K, *info_size, header))
        time.sleep(0.1)
    return stamps


def poses_for(g, stamps):
    return [p for p in list(g.poses) if (p.header.stamp.sec, p.header.stamp.nanosec) in set(stamps)]


def test_a_good_descriptor_set_gives_a_pose_at_the_match(running):
    """The control: without it the refusals below would pass on a node that never publishes."""
    g = running
    stamps = set()
    assert wait_until(lambda: stamps.update(feed(g)) or poses_for(g, stamps), TIMEOUT_S), \
        g.log_text("grasp_node")[-2000:]
    pose = poses_for(g, stamps)[0]
    assert pose.header.frame_id == FRAME
    u, v = MATCH_UV
    expected = [(u - K[0, 2]) * 0.5 / K[0, 0], (v - K[1, 2]) * 0.5 / K[1, 1], 0.5]
    np.testing.assert_allclose([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z], expected,
                               atol=0.01)


def k_with(**entries):
    out = K.copy()
    for name, value in entries.items():
        out[{"fx": (0, 0), "fy": (1, 1), "cx": (0, 2), "cy": (1, 2)}[name]] = value
    return out


@pytest.mark.parametrize("case, kwargs, text", [
    ("camera_info of another size", {"info_size": (W // 2, H // 2)},
     f"camera_info size {W // 2}x{H // 2} differs from the image size {W}x{H}"),
    ("focal length 1e-300", {"info_K": k_with(fx=1e-300)},
     f"implausible camera intrinsics: focal length fx=1e-300 px is implausible for a {W}x{H} image"),
    ("focal length far too long", {"info_K": k_with(fy=1e7)}, "focal length fy=1e+07 px"),
    ("principal point -1e308", {"info_K": k_with(cx=-1e308)},
     f"principal point cx=-1e+308 px is far outside the {W}x{H} image"),
    ("empty frame_id", {"frame_id": ""}, "header.frame_id is empty"),
])
def test_refused_descriptor_set_logs_the_reason_and_publishes_no_pose(running, case, kwargs, text):
    g = running
    bad = set()
    assert wait_until(lambda: bad.update(feed(g, **kwargs)) or text in g.log_text("grasp_node"), TIMEOUT_S), \
        f"{case}: no log containing {text!r}; grasp_node logged:\n{g.log_text('grasp_node')[-2000:]}"
    time.sleep(0.5)  # let anything in flight arrive
    assert not poses_for(g, bad), f"{case}: a pose was published for a refused set"
    assert not [p for p in list(g.poses) if not p.header.frame_id], "a pose went out with an empty frame_id"
    assert "Traceback" not in g.log_text("grasp_node") and "unexpected error" not in g.log_text("grasp_node")
    good = set()
    assert wait_until(lambda: good.update(feed(g)) or poses_for(g, good), TIMEOUT_S), \
        f"{case}: no pose for a good set after the refused ones"
