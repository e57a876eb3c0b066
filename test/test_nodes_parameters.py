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
    assert set_one(node, "max_ratio", 0.8).successful and node.settings.max_ratio == 0.8
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


def _descriptor_set_publishers(graph, prefix):
    from sensor_msgs.msg import CameraInfo, Image

    from dense_descriptor_grasp.nodes.common import reliable_qos

    return [graph.node.create_publisher(t, f"{prefix}/{name}", reliable_qos(5))
            for t, name in ((Image, "image"), (Image, "depth"), (CameraInfo, "camera_info"))]


def _publish_descriptor_set(graph, pubs, match_uv):
    """A 32FC<D> descriptor set whose only pixel with descriptor e0 is ``match_uv``; flat depth 0.5 m."""
    from std_msgs.msg import Header

    from dense_descriptor_grasp.image_msgs import descriptor_encoding, make_camera_info, numpy_to_image

    h, w = SIZE
    desc = np.zeros((h, w, D), np.float32)
    desc[:, :, 1] = 1.0
    desc[match_uv[1], match_uv[0]] = np.eye(D, dtype=np.float32)[0]
    header = Header(frame_id="camera_color_optical_frame", stamp=graph.node.get_clock().now().to_msg())
    K = np.array([[70.0, 0, (w - 1) / 2], [0, 70.0, (h - 1) / 2], [0, 0, 1]])
    for pub, msg in zip(pubs, (numpy_to_image(desc, descriptor_encoding(D), header),
                               numpy_to_image(np.full((h, w), 0.5, np.float32), "32FC1", header),
                               make_camera_info(K, w, h, header))):
        pub.publish(msg)


def test_refused_parameter_change_takes_no_effect(graph, tmp_path):
    """Issue 12, item 1: a refused set (depth_window 4) must leave the node grasping with the old value; a change
    refused in part (set atomically with a valid value) changes nothing either."""
    from geometry_msgs.msg import PoseStamped
    from rclpy.parameter import Parameter

    from dense_descriptor_grasp.grasping.reference import Reference, save_reference
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode
    from nodes_harness import wait_until

    ref = save_reference(tmp_path / "one.npz", Reference("x", np.eye(D)[:1], [[40.0, 32.0]], [[0.0, 0.0, 0.5]]))
    prefix = "refusal"
    node = graph.add(GraspNode, {"reference_path": str(ref), "log_throttle": 0.0},
                     remap={"__node": "grasp_node_refusal", "descriptors/image": f"{prefix}/image",
                            "descriptors/depth": f"{prefix}/depth", "descriptors/camera_info": f"{prefix}/camera_info",
                            "descriptors/preview": f"{prefix}/preview", "grasp/pose": f"{prefix}/pose"})
    poses = graph.collect(PoseStamped, f"{prefix}/pose")
    pubs = _descriptor_set_publishers(graph, prefix)

    def grasps_after(n_before, at_least=2):
        return wait_until(lambda: (_publish_descriptor_set(graph, pubs, (40, 32)) or True)
                          and len(poses) >= n_before + at_least, period=0.1)

    assert grasps_after(0), "no grasp before any parameter change: " + graph.log_text("grasp_node_refusal")[-1500:]
    result = set_one(node, "depth_window", 4)
    assert not result.successful and "odd" in result.reason and node.get_parameter("depth_window").value == 5
    n = len(poses)
    assert grasps_after(n), "no grasp after a refused depth_window: " + graph.log_text("grasp_node_refusal")[-1500:]
    assert "depth window" not in graph.log_text("grasp_node_refusal")
    assert node.settings.depth_window == 5
    # refused in part: nothing of it is applied
    result = node.set_parameters_atomically([Parameter("max_ratio", value=0.5), Parameter("depth_window", value=4)])
    assert not result.successful
    assert node.get_parameter("max_ratio").value == 0.7 and node.settings.max_ratio == 0.7
    assert node.settings.depth_window == 5
    # an accepted change is applied
    assert set_one(node, "depth_window", 7).successful and node.settings.depth_window == 7
    assert grasps_after(len(poses))
    graph.remove(node)


def test_sim_camera_refused_change_keeps_the_rate(graph):
    from rclpy.parameter import Parameter

    from dense_descriptor_grasp.nodes.sim_camera_node import SimCameraNode

    camera = graph.add(SimCameraNode, {"rate": 5.0, "width": SIZE[1], "height": SIZE[0]},
                       remap={"__node": "sim_camera_refusal", "camera/color/image_raw": "refusal/color",
                              "camera/depth/image_raw": "refusal/depth",
                              "camera/color/camera_info": "refusal/info", "sim/object_pose": "refusal/object_pose"})
    try:
        result = camera.set_parameters_atomically([Parameter("rate", value=20.0),
                                                   Parameter("depth_encoding", value="bogus")])
        assert not result.successful and "depth_encoding" in result.reason
        assert camera.get_parameter("rate").value == 5.0 and camera.timer.timer_period_ns == 200_000_000
        assert set_one(camera, "rate", 20.0).successful and camera.timer.timer_period_ns == 50_000_000
    finally:
        graph.remove(camera)


# ---------------------------------------------------------------------------------------------------------------
# One table of grasp settings (issue 13, finding 6) and parameters that tell the truth (issue 12, item 5)

def test_grasp_settings_and_the_node_read_one_table(graph):
    import dataclasses

    from dense_descriptor_grasp.grasping.grasp_estimate import GRASP_SETTING_SPECS, GraspSettings
    from dense_descriptor_grasp.nodes import grasp_node
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    fields = {f.name: f.default for f in dataclasses.fields(GraspSettings)}
    assert fields == {s.name: s.default for s in GRASP_SETTING_SPECS}
    assert all(s in grasp_node.PARAMETERS for s in GRASP_SETTING_SPECS)
    node = getattr(graph, "grasp", None) or graph.add(GraspNode, {"reference_path": str(graph.ref)})
    graph.grasp = node
    for spec in GRASP_SETTING_SPECS:
        descriptor = node.describe_parameter(spec.name)
        assert descriptor.description.startswith(spec.description), spec.name
        ranges = list(descriptor.floating_point_range) + list(descriptor.integer_range)
        if spec.min_value is not None:
            assert (ranges[0].from_value, ranges[0].to_value) == (spec.min_value, spec.max_value), spec.name
        else:
            assert not ranges, spec.name


def test_params_file_matches_the_parameter_tables():
    """config/grasp.yaml: every key is a parameter of its node, every value passes the node's rules, and the grasp
    settings there are the defaults of the one table."""
    from pathlib import Path

    import yaml

    from dense_descriptor_grasp.grasping.grasp_estimate import GRASP_SETTING_SPECS
    from dense_descriptor_grasp.nodes import descriptor_node, grasp_node, sim_camera_node

    blocks = yaml.safe_load((Path(__file__).resolve().parents[1] / "config" / "grasp.yaml").read_text())
    tables = {"grasp_node": grasp_node.PARAMETERS, "descriptor_node": descriptor_node.PARAMETERS,
              "sim_camera_node": sim_camera_node.PARAMETERS}
    assert set(blocks) == set(tables)
    for node_name, block in blocks.items():
        specs = {s.name: s for s in tables[node_name]}
        values = block["ros__parameters"]
        unknown = sorted(set(values) - set(specs))
        assert not unknown, f"grasp.yaml: {node_name} has no parameters {unknown}"
        for name, value in values.items():
            assert not specs[name].check(value), f"grasp.yaml: {node_name}.{name}: {specs[name].check(value)}"
            assert type(value) is type(specs[name].default), f"grasp.yaml: {node_name}.{name} {value!r}"
    grasp_values = blocks["grasp_node"]["ros__parameters"]
    assert {s.name: grasp_values.get(s.name) for s in GRASP_SETTING_SPECS} == \
        {s.name: s.default for s in GRASP_SETTING_SPECS}


@pytest.mark.parametrize("changes, text", [
    ({"min_depth": 10.0}, "min_depth must be below max_depth"),
    ({"max_depth": 0.04}, "min_depth must be below max_depth"),
    ({"max_depth": 0.0}, "max_depth"),
    ({"min_depth": 1.0, "max_depth": 0.5}, "min_depth must be below max_depth"),
])
def test_depth_limits_are_validated_together(graph, changes, text):
    from rclpy.parameter import Parameter

    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    node = getattr(graph, "grasp", None) or graph.add(GraspNode, {"reference_path": str(graph.ref)})
    graph.grasp = node
    before = (node.get_parameter("min_depth").value, node.get_parameter("max_depth").value, node.settings)
    result = node.set_parameters_atomically([Parameter(k, value=v) for k, v in changes.items()])
    assert not result.successful and text in result.reason, result.reason
    assert (node.get_parameter("min_depth").value, node.get_parameter("max_depth").value, node.settings) == before
    # the other order of a valid pair works when it is set at once
    assert node.set_parameters_atomically([Parameter("min_depth", value=6.0), Parameter("max_depth", value=7.0)]
                                          ).successful and node.settings.min_depth == 6.0
    assert node.set_parameters_atomically([Parameter("min_depth", value=0.05), Parameter("max_depth", value=5.0)]
                                          ).successful and node.settings.max_depth == 5.0


def test_inverted_depth_limits_refused_at_startup(graph):
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    with pytest.raises(ValueError, match="min_depth must be below max_depth"):
        graph.add(GraspNode, {"reference_path": str(graph.ref), "min_depth": 10.0, "max_depth": 5.0},
                  remap={"__node": "grasp_node_inverted"})


def test_wrong_type_names_the_types_through_the_parameter_service(graph):
    """What `ros2 param set /grasp_node max_depth 5` shows: rclpy said "expected '3' got '4'"."""
    from rcl_interfaces.msg import Parameter as ParameterMsg
    from rcl_interfaces.msg import ParameterType, ParameterValue
    from rcl_interfaces.srv import SetParameters

    from dense_descriptor_grasp.nodes.grasp_node import GraspNode
    from nodes_harness import wait_until

    node = graph.add(GraspNode, {"reference_path": str(graph.ref)}, remap={"__node": "grasp_node_types"})
    try:
        client = graph.node.create_client(SetParameters, "/grasp_node_types/set_parameters")
        assert client.wait_for_service(timeout_sec=10.0)

        def set_remote(name, value):
            request = SetParameters.Request(parameters=[ParameterMsg(name=name, value=value)])
            future = client.call_async(request)
            assert wait_until(future.done, 10.0)
            return future.result().results[0]

        result = set_remote("max_depth", ParameterValue(type=ParameterType.PARAMETER_INTEGER, integer_value=5))
        assert not result.successful
        assert "'max_depth'" in result.reason and "expected double, got integer" in result.reason, result.reason
        assert "5.0" in result.reason                                           # the hint: write 5.0
        result = set_remote("depth_window", ParameterValue(type=ParameterType.PARAMETER_STRING, string_value="7"))
        assert "expected integer, got string" in result.reason, result.reason
        assert set_remote("max_depth", ParameterValue(type=ParameterType.PARAMETER_DOUBLE, double_value=4.0)).successful
        assert node.settings.max_depth == 4.0
        # the in-process API says the same
        assert "expected bool, got integer" in set_one(node, "use_object_pose", 1).reason
        graph.node.destroy_client(client)
    finally:
        graph.remove(node)


def test_startup_only_parameters_are_read_only_and_runtime_ones_apply(graph, tmp_path):
    """log_throttle and stats_period apply at runtime; num_threads (torch's process-wide pool) is read-only."""
    from geometry_msgs.msg import PoseStamped

    from dense_descriptor_grasp.grasping.reference import Reference, save_reference
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from dense_descriptor_grasp.nodes.grasp_node import GraspNode
    from nodes_harness import wait_until

    desc = graph.add(DescriptorNode, {"model_path": str(graph.ckpt)}, remap={"__node": "descriptor_node_ro"})
    try:
        result = set_one(desc, "num_threads", 2)
        assert not result.successful and "read-only" in result.reason
        assert "startup" in desc.describe_parameter("num_threads").description
        assert set_one(desc, "log_throttle", 7.5).successful and desc.log.period == 7.5
        assert desc.describe_parameter("camera_reliability").read_only
    finally:
        graph.remove(desc)

    ref = save_reference(tmp_path / "one.npz", Reference("x", np.eye(D)[:1], [[40.0, 32.0]], [[0.0, 0.0, 0.5]]))
    prefix = "stats"
    node = graph.add(GraspNode, {"reference_path": str(ref)},
                     remap={"__node": "grasp_node_stats", "descriptors/image": f"{prefix}/image",
                            "descriptors/depth": f"{prefix}/depth", "descriptors/camera_info": f"{prefix}/camera_info",
                            "descriptors/preview": f"{prefix}/preview", "grasp/pose": f"{prefix}/pose"})
    try:
        poses = graph.collect(PoseStamped, f"{prefix}/pose")
        pubs = _descriptor_set_publishers(graph, prefix)
        assert set_one(node, "log_throttle", 0.25).successful and node.log.period == 0.25
        assert set_one(node, "stats_period", 0.3).successful
        assert wait_until(lambda: (_publish_descriptor_set(graph, pubs, (40, 32)) or True)
                          and "stats:" in graph.log_text("grasp_node_stats"), period=0.1), \
            graph.log_text("grasp_node_stats")[-1500:]
        assert poses
        assert set_one(node, "stats_period", 0.0).successful and node._stats_timer is None
    finally:
        graph.remove(node)


def test_unknown_keys_of_the_params_file_block_are_warned_about(graph, tmp_path):
    """rclpy ignores a typo'd key silently: the node names it (and its known parameters) at startup."""
    import yaml

    from dense_descriptor_grasp.nodes.grasp_node import GraspNode

    params = tmp_path / "typo.yaml"
    params.write_text(yaml.safe_dump({"grasp_node_typo": {"ros__parameters": {
        "reference_path": str(graph.ref), "max_distnace": 0.3, "max_ratio": 0.9}}}))
    node = GraspNode(context=graph.context, cli_args=["--ros-args", "-r", "__node:=grasp_node_typo",
                                                      "--params-file", str(params)])
    graph.nodes.append(node)
    graph.executor.add_node(node)
    try:
        assert node.get_parameter("max_ratio").value == 0.9
        assert node.unknown_parameter_overrides() == ["max_distnace"]
        assert graph.wait_log("grasp_node_typo", "max_distnace"), graph.log_text("grasp_node_typo")
        text = graph.log_text("grasp_node_typo")
        assert "unknown parameter" in text and "max_distance" in text          # the known names are listed
    finally:
        graph.remove(node)
