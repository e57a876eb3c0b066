"""What ``grasp.launch.py`` starts, as plain data (no ROS imports): arguments, nodes, remappings, RViz.

Both ``launch/grasp.launch.py`` (ROS 2 installs with launch_ros) and the pip bringup (``bringup.py``) read this
module, so the two cannot drift apart: an argument, a node or a remapping added here appears in both.

Topic contract (relative names, so a namespace or a remapping moves them all):

    sim_camera_node  publishes  camera/color/image_raw (rgb8), camera/depth/image_raw (32FC1 metres),
                                camera/color/camera_info, sim/object_pose (PoseStamped)
    descriptor_node  subscribes camera/color/image_raw, camera/depth/image_raw, camera/color/camera_info
                     publishes  descriptors/image (32FC<D>), descriptors/preview (rgb8), descriptors/depth,
                                descriptors/camera_info
    grasp_node       subscribes descriptors/image, descriptors/preview, descriptors/depth, descriptors/camera_info
                     publishes  grasp/pose (PoseStamped), grasp/markers (MarkerArray), grasp/heatmap (rgb8)

The three camera topics are remapped, in the sim camera and in the descriptor node alike, to the values of the
``color_topic``, ``depth_topic`` and ``camera_info_topic`` arguments (defaults: the names above, unchanged).
``model`` / ``reference`` / ``device`` are passed as string parameters on top of ``params_file``: descriptor_node
gets ``model_path`` and ``device``, grasp_node ``reference_path`` and ``model_path`` (to check the reference's
model identity and D). An empty ``model`` or ``reference`` reaches the nodes as ``""``, which they reject at
startup with a message naming the launch argument.
"""
from __future__ import annotations

from dataclasses import dataclass

PACKAGE = "dense_descriptor_grasp"
CAMERA_FRAME = "camera_color_optical_frame"
BOOLEAN_CHOICES = ("true", "false")

# topic -> message type ("package/Type"), the contract above.
TOPICS: dict[str, str] = {
    "camera/color/image_raw": "sensor_msgs/Image",
    "camera/depth/image_raw": "sensor_msgs/Image",
    "camera/color/camera_info": "sensor_msgs/CameraInfo",
    "sim/object_pose": "geometry_msgs/PoseStamped",
    "descriptors/image": "sensor_msgs/Image",
    "descriptors/preview": "sensor_msgs/Image",
    "descriptors/depth": "sensor_msgs/Image",
    "descriptors/camera_info": "sensor_msgs/CameraInfo",
    "grasp/pose": "geometry_msgs/PoseStamped",
    "grasp/markers": "visualization_msgs/MarkerArray",
    "grasp/heatmap": "sensor_msgs/Image",
}


@dataclass(frozen=True)
class LaunchArgument:
    """One launch argument. ``share_relative``: ``default`` is a path inside the package's installed share dir."""

    name: str
    default: str
    description: str
    choices: tuple[str, ...] = ()
    share_relative: bool = False


@dataclass(frozen=True)
class NodeSpec:
    """One node of this package the launch starts.

    ``remappings``: (topic name inside the node, launch argument whose value it is remapped to).
    ``parameters``: (ROS parameter name, launch argument whose value it gets, as a string).
    ``condition``: a boolean launch argument that must be true for the node to start (None: always).
    """

    executable: str
    name: str
    remappings: tuple[tuple[str, str], ...] = ()
    parameters: tuple[tuple[str, str], ...] = ()
    condition: str | None = None


@dataclass(frozen=True)
class RvizSpec:
    """RViz2 (package ``rviz2``) with a config file inside this package's share dir, when ``condition`` is true."""

    config: str = "config/grasp.rviz"
    condition: str = "rviz"
    package: str = "rviz2"
    executable: str = "rviz2"


LAUNCH_ARGUMENTS: tuple[LaunchArgument, ...] = (
    LaunchArgument("model", "",
                   "Path to the trained checkpoint (.pt) the descriptor node runs (parameter model_path). Required."),
    LaunchArgument("reference", "",
                   "Path to the reference file (reference descriptors made with the same model) the grasp node "
                   "matches (parameter reference_path). Required."),
    LaunchArgument("color_topic", "camera/color/image_raw",
                   "Colour image topic (sensor_msgs/Image, rgb8 or bgr8) of the camera."),
    LaunchArgument("depth_topic", "camera/depth/image_raw",
                   "Depth image topic (sensor_msgs/Image, 16UC1 millimetres or 32FC1 metres), aligned to colour."),
    LaunchArgument("camera_info_topic", "camera/color/camera_info",
                   "CameraInfo topic of the colour camera (intrinsics K)."),
    LaunchArgument("use_sim_camera", "true",
                   "Start sim_camera_node (pybullet RGB-D camera publishing on the camera topics above).",
                   choices=BOOLEAN_CHOICES),
    LaunchArgument("rviz", "false", "Start RViz2 with config/grasp.rviz.", choices=BOOLEAN_CHOICES),
    LaunchArgument("params_file", "config/grasp.yaml",
                   "YAML parameter file for all nodes (<node_name>: ros__parameters: blocks); default: the "
                   "installed config/grasp.yaml.", share_relative=True),
    LaunchArgument("device", "cpu", "Torch device for the descriptor network, e.g. cpu or cuda:0 (parameter device)."),
)

CAMERA_REMAPPINGS: tuple[tuple[str, str], ...] = (
    ("camera/color/image_raw", "color_topic"),
    ("camera/depth/image_raw", "depth_topic"),
    ("camera/color/camera_info", "camera_info_topic"),
)

NODES: tuple[NodeSpec, ...] = (
    NodeSpec("sim_camera_node", "sim_camera_node", remappings=CAMERA_REMAPPINGS, condition="use_sim_camera"),
    NodeSpec("descriptor_node", "descriptor_node", remappings=CAMERA_REMAPPINGS,
             parameters=(("model_path", "model"), ("device", "device"))),
    # model_path lets the grasp node refuse a reference made with another model or D at startup
    NodeSpec("grasp_node", "grasp_node", parameters=(("reference_path", "reference"), ("model_path", "model"))),
)

RVIZ = RvizSpec()

PARAMS_FILE_ARGUMENT = "params_file"


def launch_argument(name: str) -> LaunchArgument:
    """The argument called ``name``; ``ValueError`` listing the known names otherwise."""
    for argument in LAUNCH_ARGUMENTS:
        if argument.name == name:
            return argument
    raise ValueError(f"unknown launch argument {name!r}: expected one of {[a.name for a in LAUNCH_ARGUMENTS]}")


def parse_bool(value: str, name: str) -> bool:
    """``'true'``/``'false'`` (any case, also ``1``/``0``, as launch's IfCondition accepts) -> bool."""
    text = str(value).strip().lower()
    if text in ("true", "1"):
        return True
    if text in ("false", "0"):
        return False
    raise ValueError(f"launch argument {name!r} must be true or false, got {value!r}")


def resolve_arguments(overrides: dict[str, str] | None = None, share_dir: str | None = None) -> dict[str, str]:
    """Argument values after applying ``overrides`` to the defaults (what ``name:=value`` does in ros2 launch).

    Share-relative defaults are joined to ``share_dir`` when given. Unknown names and values outside an
    argument's choices raise ``ValueError``.
    """
    import os

    values = {}
    for argument in LAUNCH_ARGUMENTS:
        default = argument.default
        if argument.share_relative and share_dir is not None:
            default = os.path.join(share_dir, *default.split("/"))
        values[argument.name] = default
    for name, value in (overrides or {}).items():
        argument = launch_argument(name)
        value = str(value)
        if argument.choices and value not in argument.choices:
            raise ValueError(f"launch argument {name!r} must be one of {list(argument.choices)}, got {value!r}")
        values[name] = value
    return values


def nodes_to_start(values: dict[str, str]) -> list[NodeSpec]:
    """The nodes whose condition holds for the resolved argument ``values``."""
    return [node for node in NODES if node.condition is None or parse_bool(values[node.condition], node.condition)]


def node_remappings(node: NodeSpec, values: dict[str, str]) -> list[tuple[str, str]]:
    """(from, to) remappings of ``node`` for the argument ``values``; identity remappings left out."""
    return [(topic, values[arg]) for topic, arg in node.remappings if values[arg] != topic]


def node_parameters(node: NodeSpec, values: dict[str, str]) -> dict[str, str]:
    """Parameter overrides of ``node`` (applied after ``params_file``) for the argument ``values``."""
    return {parameter: str(values[arg]) for parameter, arg in node.parameters}
