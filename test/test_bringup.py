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


# ---------------------------------------------------------------------------------------------------------------
# bringup fails whole, like the launch file (issue 12, items 3 and 5), checked with real processes

FAILING_NODE = """
import sys
from dense_descriptor_grasp import bringup
from dense_descriptor_grasp.nodes import descriptor_node


def broken(self, index, msg):
    raise RuntimeError("descriptor_node broke on a frame")


descriptor_node.DescriptorNode._on_input = broken      # the node fails at runtime, on the first camera frame
sys.exit(bringup.main(sys.argv[1:]))
"""


@pytest.fixture(scope="module")
def bringup_files(tmp_path_factory):
    from dense_descriptor_grasp.grasping.reference import Reference, save_reference
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    folder = tmp_path_factory.mktemp("bringup_processes")
    ckpt = write_tiny_checkpoint(folder / "tiny.pt")
    identity = load_checkpoint(ckpt)["model_identity"]
    ref = save_reference(folder / "ref.npz", Reference(identity, np.ones((3, D)), np.zeros((3, 2)),
                                                       np.zeros((3, 3))))
    other = save_reference(folder / "ref_d4.npz", Reference("x", np.ones((3, 4)), np.zeros((3, 2)),
                                                            np.zeros((3, 3))))
    blocks = yaml.safe_load(open(bringup.parse_arguments([])["params_file"]))
    blocks["sim_camera_node"]["ros__parameters"].update(width=80, height=64, rate=10.0)
    params = folder / "grasp.yaml"
    params.write_text(yaml.safe_dump(blocks))
    return ckpt, ref, other, params


def run_bringup(arguments, script=None, timeout=90):
    import os
    import subprocess
    import sys

    env = dict(os.environ, ROS_DOMAIN_ID=str(101 + (os.getpid() * 7 + 17) % 100),
               ROS_AUTOMATIC_DISCOVERY_RANGE="LOCALHOST")
    command = [sys.executable, "-c", script] if script else [sys.executable, "-m", "dense_descriptor_grasp.bringup"]
    return subprocess.run(command + list(arguments), env=env, capture_output=True, text=True, timeout=timeout)


def test_bringup_refuses_a_missing_params_file_before_starting_anything(bringup_files, tmp_path):
    ckpt, ref, _, _ = bringup_files
    proc = run_bringup([f"model:={ckpt}", f"reference:={ref}", f"params_file:={tmp_path / 'typo.yaml'}"])
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1, err
    assert "typo.yaml' does not exist" in err and "no node started" in err, err
    assert "ready" not in proc.stdout + err


@pytest.mark.parametrize("arguments, expected", [
    (["model=/m.pt"], "'model=/m.pt' is not of the form name:=value"),
    (["modle:=/m.pt"], "unknown launch argument 'modle'"),
    (["use_sim_camera:=maybe"], "'use_sim_camera' must be one of ['true', 'false'], got 'maybe'"),
])
def test_bringup_names_argument_errors(arguments, expected):
    proc = run_bringup(arguments)
    err = proc.stderr.strip()
    assert proc.returncode == 2 and len(err.splitlines()) == 1 and expected in err, err


def test_a_node_failing_at_startup_ends_the_whole_bringup(bringup_files):
    """grasp_node refuses the reference (another D): the sim camera and descriptor node already started must not
    keep running; one line names the failure; the launch-style arguments are not passed to rcl (it warned
    "Found remap rule 'use_sim_camera:=true'. This syntax is deprecated")."""
    ckpt, _, other, params = bringup_files
    proc = run_bringup([f"model:={ckpt}", f"reference:={other}", f"params_file:={params}", "use_sim_camera:=true"])
    err = proc.stderr
    assert proc.returncode == 1, err
    assert "bringup: startup failed: grasp_node: reference_path=" in err and "Traceback" not in err, err
    assert "remap rule" not in err and "deprecated" not in err, err


def test_a_node_failing_while_running_ends_the_whole_bringup(bringup_files):
    ckpt, ref, _, params = bringup_files
    proc = run_bringup([f"model:={ckpt}", f"reference:={ref}", f"params_file:={params}"], script=FAILING_NODE)
    err = proc.stderr
    assert proc.returncode == 1, err
    assert "bringup: stopped: RuntimeError: descriptor_node broke on a frame" in err and "Traceback" not in err, err
