"""Dense-descriptor grasping pipeline for ROS 2 (Humble, Jazzy, Kilted) with launch_ros.

    ros2 launch dense_descriptor_grasp grasp.launch.py model:=/path/to/checkpoint.pt reference:=/path/to/reference_file
    ros2 launch dense_descriptor_grasp grasp.launch.py ... use_sim_camera:=false \
        color_topic:=/camera/color/image_raw depth_topic:=/camera/aligned_depth_to_color/image_raw \
        camera_info_topic:=/camera/color/camera_info rviz:=true

Starts sim_camera_node (when use_sim_camera), descriptor_node and grasp_node with the parameters of
``params_file`` (default: the installed config/grasp.yaml) plus model_path / reference_path / device from the
arguments, and RViz2 with config/grasp.rviz when rviz:=true. The arguments, nodes and remappings come from
``dense_descriptor_grasp.launch_description`` (plain data shared with the pip bringup, ``ros2 launch -s`` lists
them with their descriptions). Launch arguments are only substituted, never evaluated.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument
from launch.conditions import IfCondition
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from dense_descriptor_grasp.launch_description import LAUNCH_ARGUMENTS, NODES, PACKAGE, PARAMS_FILE_ARGUMENT, RVIZ


def share_path(relative_path):
    """A path inside this package's installed share directory, e.g. 'config/grasp.yaml'."""
    return PathJoinSubstitution([FindPackageShare(PACKAGE)] + relative_path.split("/"))


def declare_argument(argument):
    default = share_path(argument.default) if argument.share_relative else argument.default
    extra = {"choices": list(argument.choices)} if argument.choices else {}
    return DeclareLaunchArgument(argument.name, default_value=default, description=argument.description, **extra)


def package_node(spec):
    """One of this package's nodes: params file first, then the per-argument string parameters on top.

    ParameterValue(..., value_type=str) keeps "" and path-like values strings: a bare LaunchConfiguration
    in a parameter dict is read as YAML, and an empty model:= would become None and abort the launch.
    """
    overrides = {parameter: ParameterValue(LaunchConfiguration(argument), value_type=str)
                 for parameter, argument in spec.parameters}
    return Node(
        package=PACKAGE,
        executable=spec.executable,
        name=spec.name,
        output="screen",
        emulate_tty=True,
        parameters=[LaunchConfiguration(PARAMS_FILE_ARGUMENT), overrides],
        remappings=[(topic, LaunchConfiguration(argument)) for topic, argument in spec.remappings],
        condition=IfCondition(LaunchConfiguration(spec.condition)) if spec.condition else None,
    )


def generate_launch_description():
    rviz = Node(
        package=RVIZ.package,
        executable=RVIZ.executable,
        name="rviz2",
        output="screen",
        arguments=["-d", share_path(RVIZ.config)],
        condition=IfCondition(LaunchConfiguration(RVIZ.condition)),
    )
    return LaunchDescription(
        [declare_argument(argument) for argument in LAUNCH_ARGUMENTS]
        + [package_node(spec) for spec in NODES]
        + [rviz]
    )
