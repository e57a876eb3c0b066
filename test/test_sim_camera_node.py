"""sim_camera_node over real rclpy: one new object pose per in-process request, none while the pose is held."""
import numpy as np
import pytest

pytest.importorskip("rclpy")

from nodes_harness import SIZE, ros_graph, wait_until  # noqa: E402


@pytest.fixture
def graph():
    with ros_graph(offset=12) as g:
        yield g


def _distinct(poses) -> int:
    seen = []
    for msg in list(poses):
        p = np.array([msg.pose.position.x, msg.pose.position.y, msg.pose.position.z, msg.pose.orientation.w])
        if not seen or not np.allclose(seen[-1], p, atol=1e-9):
            seen.append(p)
    return len(seen)


def test_request_new_pose_gives_exactly_one_new_pose_per_request(graph):
    from geometry_msgs.msg import PoseStamped

    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    poses = graph.collect(PoseStamped, "sim/object_pose")
    camera = graph.add(SimCameraNode, {"width": SIZE[1], "height": SIZE[0], "rate": 20.0, "pose_period": 3600.0})
    assert wait_until(lambda: len(poses) >= 5)
    assert _distinct(poses) == 1                       # held
    camera.request_new_pose()
    camera.request_new_pose()                          # two requests before the next frame: two frames, two poses
    assert wait_until(lambda: _distinct(poses) >= 3)
    n = len(poses)
    assert wait_until(lambda: len(poses) >= n + 6)     # more frames, no further pose
    assert _distinct(poses) == 3 and camera.poses == 3
