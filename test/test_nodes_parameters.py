"""Parameter validation of the nodes: ranges, choices and odd windows are enforced at startup and at runtime."""
import numpy as np
import pytest

pytest.importorskip("rclpy")

from nodes_harness import D, SIZE, RosGraph, isolate_ros_graph, restore_ros_env, write_tiny_checkpoint  # noqa: E402


@pytest.fixture(scope="module")
def graph(tmp_path_factory):
    from dense_descriptor_grasp.grasping.reference import Reference, save_reference

    folder = tmp_path_factory.mktemp("nodes_parameters")
    previous = isolate_ros_graph(offset=3)
    g = RosGraph()
    g.ckpt = write_tiny_checkpoint(folder / "tiny.pt")
    g.ref = save_reference(folder / "ref.npz", Reference("x", np.ones((3, D)), np.zeros((3, 2)), np.zeros((3, 3))))
    yield g
    g.close()
    restore_ros_env(previous)


def set_one(node, name, value):
    from rclpy.parameter import Parameter

    return node.set_parameters([Parameter(name, value=value)])[0]


@pytest.mark.parametrize("name, value, reason", [
    ("max_ratio", 1.5, "max_ratio"),
    ("inlier_threshold", 0.0, "inlier_threshold"),
    ("depth_window", 4, "odd"),
    ("depth_window", 99, "depth_window"),
    ("metric", "hamming", "one of"),
    ("approach", "sideways", "one of"),
    ("subpixel", "cubic", "one of"),
])
def test_grasp_node_rejects_out_of_range_values(graph, name, value, reason):
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    node = getattr(graph, "grasp", None) or graph.add(GraspNode, {"reference_path": str(graph.ref)})
    graph.grasp = node
    before = node.get_parameter(name).value
    result = set_one(node, name, value)
    assert not result.successful and reason in result.reason
    assert node.get_parameter(name).value == before


def test_grasp_node_applies_valid_changes_and_refuses_read_only(graph):
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    node = getattr(graph, "grasp", None) or graph.add(GraspNode, {"reference_path": str(graph.ref)})
    graph.grasp = node
    assert set_one(node, "max_ratio", 0.7).successful and node.settings.max_ratio == 0.7
    assert set_one(node, "metric", "l2").successful and node.settings.metric == "l2"
    assert not set_one(node, "reference_path", "/tmp/other.npz").successful


def test_startup_values_are_checked(graph):
    from rclpy.exceptions import InvalidParameterValueException

    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode
    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    with pytest.raises(InvalidParameterValueException, match="model_path"):
        graph.add(DescriptorNode, {"model_path": ""})
    with pytest.raises(RuntimeError, match="missing.pt"):
        graph.add(DescriptorNode, {"model_path": "/nonexistent/missing.pt"})
    with pytest.raises(InvalidParameterValueException, match="rate"):
        graph.add(SimCameraNode, {"rate": 1000.0, "width": SIZE[1], "height": SIZE[0]})
    with pytest.raises(InvalidParameterValueException, match="metric"):
        graph.add(GraspNode, {"reference_path": str(graph.ref), "metric": "hamming"})
    with pytest.raises(RuntimeError, match="does not exist"):
        graph.add(GraspNode, {"reference_path": "/nonexistent/ref.npz"})
    node = graph.add(DescriptorNode, {"model_path": str(graph.ckpt), "input_width": 96})
    assert node.descriptor_dim == D and node.get_parameter("model_identity").value
    assert not set_one(node, "input_width", -1).successful and node.get_parameter("input_width").value == 96
    assert not set_one(node, "sync_slop", 0.1).successful                  # read-only after startup
    with pytest.raises(InvalidParameterValueException, match="sync_slop"):
        graph.add(DescriptorNode, {"model_path": str(graph.ckpt), "sync_slop": 5.0})
