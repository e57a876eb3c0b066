"""The pip bringup starts the launch file's nodes with the same YAML parameters, arguments and remappings."""
import numpy as np
import pytest
import yaml

pytest.importorskip("rclpy")

from nodes_harness import D, isolate_ros_graph, restore_ros_env, write_tiny_checkpoint  # noqa: E402

from dense_descriptor_grasp import bringup  # noqa: E402
from dense_descriptor_grasp import launch_description as ld  # noqa: E402


def test_arguments_are_the_launch_files():
    values = bringup.parse_arguments(["model:=/m.pt", "use_sim_camera:=false"])
    assert values["model"] == "/m.pt" and values["use_sim_camera"] == "false"
    assert values["params_file"].endswith("config/grasp.yaml")
    assert [n.executable for n in ld.nodes_to_start(values)] == ["descriptor_node", "grasp_node"]
    with pytest.raises(ValueError, match="unknown launch argument"):
        bringup.parse_arguments(["modle:=/m.pt"])
    with pytest.raises(ValueError, match="name:=value"):
        bringup.parse_arguments(["model=/m.pt"])
    with pytest.raises(ValueError, match="rviz"):
        bringup.parse_arguments(["rviz:=maybe"])
    assert set(bringup.NODE_CLASSES) == {n.executable for n in ld.NODES}


def test_yaml_has_every_declared_parameter_of_a_block():
    blocks = yaml.safe_load(open(bringup.parse_arguments([])["params_file"]))
    assert set(blocks) == {n.name for n in ld.NODES}


def test_nodes_start_with_yaml_parameters_and_remappings(tmp_path):
    import rclpy
    from rclpy.context import Context

    from dense_descriptor_grasp.grasping.reference import Reference, save_reference

    previous = isolate_ros_graph(offset=4)
    ckpt = write_tiny_checkpoint(tmp_path / "tiny.pt")
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    identity = load_checkpoint(ckpt)["model_identity"]      # the launch passes model_path to the grasp node too
    ref = save_reference(tmp_path / "ref.npz", Reference(identity, np.ones((3, D)), np.zeros((3, 2)),
                                                         np.zeros((3, 3))))
    params = tmp_path / "grasp.yaml"
    blocks = yaml.safe_load(open(bringup.parse_arguments([])["params_file"]))
    blocks["grasp_node"]["ros__parameters"]["max_ratio"] = 0.77
    blocks["sim_camera_node"]["ros__parameters"].update(width=80, height=64)
    params.write_text(yaml.safe_dump(blocks))
    values = bringup.parse_arguments([f"model:={ckpt}", f"reference:={ref}", f"params_file:={params}",
                                      "color_topic:=/cam/rgb"])
    context = Context()
    rclpy.init(context=context)
    nodes = []
    try:
        nodes = bringup.start_nodes(values, context=context)
        by_name = {n.get_name(): n for n in nodes}
        assert set(by_name) == {"sim_camera_node", "descriptor_node", "grasp_node"}
        assert by_name["grasp_node"].get_parameter("max_ratio").value == 0.77
        assert by_name["grasp_node"].settings.max_ratio == 0.77
        assert by_name["descriptor_node"].get_parameter("model_path").value == str(ckpt)
        assert by_name["sim_camera_node"].get_parameter("width").value == 80
        assert by_name["sim_camera_node"].resolve_topic_name("camera/color/image_raw") == "/cam/rgb"
        assert by_name["descriptor_node"].resolve_topic_name("camera/color/image_raw") == "/cam/rgb"
    finally:
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown(context=context)
        restore_ros_env(previous)
