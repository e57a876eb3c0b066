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

The launch fails whole (issue 12, item 3):

- before anything starts, an OpaqueFunction checks the resolved arguments (``bringup.preflight_errors``): a
  ``params_file`` that does not exist (launch_ros would only warn and run the nodes on built-in defaults) and
  ``rviz:=true`` without rviz2 stop the launch with ``[ERROR] [launch]: Caught exception in launch ...: <why>``,
  no node started;
- the three package nodes are required: each has ``on_exit=Shutdown(...)`` (launch's documented way, the
  ``OnProcessExit`` + ``Shutdown`` pair in one argument), so when one exits (missing model, bad reference,
  refused parameter, a crash) the whole launch shuts down instead of running half a pipeline. RViz is not
  required: closing its window leaves the pipeline running.
"""
from launch import LaunchDescription
from launch.actions import DeclareLaunchArgument, OpaqueFunction, Shutdown
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from dense_descriptor_grasp.bringup import preflight_errors
from dense_descriptor_grasp.launch_description import (LAUNCH_ARGUMENTS, PACKAGE, PARAMS_FILE_ARGUMENT, RVIZ,
                                                       node_parameters, node_remappings, nodes_to_start, parse_bool)


def share_path(relative_path):
    """A path inside this package's installed share directory, e.g. 'config/grasp.yaml'."""
    return PathJoinSubstitution([FindPackageShare(PACKAGE)] + relative_path.split("/"))


def declare_argument(argument):
    default = share_path(argument.default) if argument.share_relative else argument.default
    extra = {"choices": list(argument.choices)} if argument.choices else {}
    return DeclareLaunchArgument(argument.name, default_value=default, description=argument.description, **extra)


def package_node(spec, values):
    """One of this package's nodes, required: params file first, then the per-argument string parameters on top.

    ParameterValue(..., value_type=str) keeps "" and path-like values strings: a parameter value given to
    launch_ros as text is read as YAML, and an empty model:= would become None and abort the launch.
    """
    overrides = {parameter: ParameterValue(value, value_type=str)
                 for parameter, value in node_parameters(spec, values).items()}
    return Node(
        package=PACKAGE,
        executable=spec.executable,
        name=spec.name,
        output="screen",
        emulate_tty=True,
        parameters=[values[PARAMS_FILE_ARGUMENT], overrides],
        remappings=node_remappings(spec, values),
        on_exit=Shutdown(reason=f"{spec.name} exited: the pipeline cannot run without it"),
    )


def start_pipeline(context, *args, **kwargs):
    """Runs when the arguments are resolved: check them, then return the nodes to start (none on an error)."""
    values = {argument.name: LaunchConfiguration(argument.name).perform(context) for argument in LAUNCH_ARGUMENTS}
    errors = preflight_errors(values, check_rviz=True)
    if errors:
        raise RuntimeError(f"{PACKAGE} grasp.launch.py: {'; '.join(errors)}; no node started")
    actions = [package_node(spec, values) for spec in nodes_to_start(values)]
    if parse_bool(values[RVIZ.condition], RVIZ.condition):
        actions.append(Node(package=RVIZ.package, executable=RVIZ.executable, name="rviz2", output="screen",
                            arguments=["-d", share_path(RVIZ.config)]))
    return actions


def generate_launch_description():
    return LaunchDescription(
        [declare_argument(argument) for argument in LAUNCH_ARGUMENTS]
        + [OpaqueFunction(function=start_pipeline)]
    )

