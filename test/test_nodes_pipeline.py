"""sim_camera_node -> descriptor_node -> grasp_node over real rclpy + Fast DDS (pip Kilted wheels)."""
import numpy as np
import pytest

pytest.importorskip("rclpy")

from nodes_harness import (SIZE, TIMEOUT_S, reference_from_sim_view, ros_graph, wait_until,  # noqa: E402
                           write_tiny_checkpoint)


@pytest.fixture(scope="module")
def artefacts(tmp_path_factory):
    folder = tmp_path_factory.mktemp("nodes_pipeline")
    ckpt = write_tiny_checkpoint(folder / "tiny.pt")
    ref, view = reference_from_sim_view(ckpt, folder / "reference.npz")
    return ckpt, folder / "reference.npz", ref, view


@pytest.fixture
def graph():
    with ros_graph(offset=1) as g:
        yield g
    assert not g.context.ok()


def test_sim_camera_to_grasp_pose_on_the_object_surface(graph, artefacts):
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import Image
    from visualization_msgs.msg import MarkerArray

    from dense_descriptor_grasp.geometry.camera import project
    from dense_descriptor_grasp.image_msgs import image_to_numpy
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    ckpt, ref_path, ref, view = artefacts
    poses = graph.collect(PoseStamped, "grasp/pose")
    markers = graph.collect(MarkerArray, "grasp/markers")
    heatmaps = graph.collect(Image, "grasp/heatmap")
    colors = graph.collect(Image, "camera/color/image_raw")
    graph.add(GraspNode, {"reference_path": str(ref_path), "model_path": str(ckpt)})
    graph.add(DescriptorNode, {"model_path": str(ckpt)})
    graph.add(SimCameraNode, {"width": SIZE[1], "height": SIZE[0], "rate": 10.0, "pose_period": 1000.0,
                              "seed": 0})
    assert wait_until(lambda: len(poses) >= 2, 3 * TIMEOUT_S), \
        f"no grasp pose; logs:\n{graph.log_text('grasp_node')}\n{graph.log_text('descriptor_node')}"
    pose = poses[-1]
    stamps = {(c.header.stamp.sec, c.header.stamp.nanosec): c for c in colors}
    key = (pose.header.stamp.sec, pose.header.stamp.nanosec)
    assert key in stamps, "the pose stamp is not the stamp of a published colour image"
    assert pose.header.frame_id == stamps[key].header.frame_id == "camera_color_optical_frame"
    p = np.array([pose.pose.position.x, pose.pose.position.y, pose.pose.position.z])
    uv, z = project(p[None], view.K)
    u, v = (int(round(c)) for c in uv[0])
    assert 0 <= u < SIZE[1] and 0 <= v < SIZE[0]
    assert view.mask[v, u] > 0, f"grasp point projects to ({u}, {v}), not on the object"
    assert abs(float(z[0]) - float(view.depth[v, u])) < 0.01, "grasp point is not on the observed surface"
    np.testing.assert_allclose(p, ref.points[0], atol=0.005)
    q = np.array([pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z, pose.pose.orientation.w])
    assert abs(np.linalg.norm(q) - 1) < 1e-6
    assert wait_until(lambda: markers and heatmaps, TIMEOUT_S)
    assert {m.ns for m in markers[-1].markers} == {"grasp"}
    assert image_to_numpy(heatmaps[-1]).shape == (SIZE[0], SIZE[1], 3)


def test_descriptor_preview_is_published_only_while_someone_subscribes(graph, artefacts):
    from sensor_msgs.msg import Image

    from dense_descriptor_grasp.image_msgs import image_to_numpy
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    ckpt = artefacts[0]
    sets = graph.collect(Image, "descriptors/image")
    node = graph.add(DescriptorNode, {"model_path": str(ckpt)})
    graph.add(SimCameraNode, {"width": SIZE[1], "height": SIZE[0], "rate": 10.0, "pose_period": 1000.0, "seed": 0})
    assert wait_until(lambda: len(sets) >= 3, 3 * TIMEOUT_S), graph.log_text("descriptor_node")
    assert node.previews == 0                       # no subscriber: the preview is never computed
    previews = graph.collect(Image, "descriptors/preview")
    assert wait_until(lambda: len(previews) >= 2, 3 * TIMEOUT_S), graph.log_text("descriptor_node")
    assert node.previews >= 2
    assert image_to_numpy(previews[-1]).shape == (SIZE[0], SIZE[1], 3)
