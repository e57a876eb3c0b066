"""``bringup``: the pip users' equivalent of ``ros2 launch dense_descriptor_grasp grasp.launch.py``.

    bringup model:=models/model.pt reference:=models/reference.npz [use_sim_camera:=true] [device:=cpu]
            [color_topic:=...] [depth_topic:=...] [camera_info_topic:=...] [params_file:=config/grasp.yaml]

Same arguments (``name:=value``), same nodes, remappings and parameter overrides as the launch file: both read
:mod:`dense_descriptor_grasp.launch_description`. The nodes run in one process on a MultiThreadedExecutor;
each loads its ``<node_name>: ros__parameters:`` block of ``params_file`` (default: the repository's or the
installed ``config/grasp.yaml``). RViz is not started here (``rviz:=true`` prints how to start it).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path

from dense_descriptor_grasp import launch_description as ld

# executable name (launch_description.NodeSpec.executable) -> node class
NODE_CLASSES = {
    "sim_camera_node": "dense_descriptor_grasp.nodes.sim_camera_node:SimCameraNode",
    "descriptor_node": "dense_descriptor_grasp.nodes.descriptor_node:DescriptorNode",
    "grasp_node": "dense_descriptor_grasp.nodes.grasp_node:GraspNode",
}


def default_share_dir() -> str:
    """The folder holding config/: the source checkout when run from it, else the installed share dir."""
    repo = Path(__file__).resolve().parent.parent
    if (repo / "config" / "grasp.yaml").is_file():
        return str(repo)
    try:
        from ament_index_python.packages import get_package_share_directory

        return get_package_share_directory(ld.PACKAGE)
    except Exception:  # noqa: BLE001 - no ament index in a pip install
        return str(Path(sys.prefix) / "share" / ld.PACKAGE)


def parse_arguments(argv) -> dict[str, str]:
    """``name:=value`` tokens -> resolved launch argument values (ValueError on unknown names or bad choices)."""
    overrides = {}
    for token in argv:
        if ":=" not in token:
            raise ValueError(f"argument {token!r} is not of the form name:=value; known names: "
                             f"{[a.name for a in ld.LAUNCH_ARGUMENTS]}")
        name, value = token.split(":=", 1)
        overrides[name] = value
    return ld.resolve_arguments(overrides, share_dir=default_share_dir())


def node_class(executable: str):
    module, cls = NODE_CLASSES[executable].split(":")
    return getattr(importlib.import_module(module), cls)


def node_cli_args(spec, values: dict[str, str]) -> list[str]:
    """``--ros-args`` for one node: the params file, then remappings (launch_ros passes the same)."""
    args = ["--ros-args", "-r", f"__node:={spec.name}"]
    params_file = values[ld.PARAMS_FILE_ARGUMENT]
    if params_file:
        if not os.path.isfile(params_file):
            raise ValueError(f"params_file {params_file!r} does not exist")
        args += ["--params-file", params_file]
    for topic, target in ld.node_remappings(spec, values):
        args += ["-r", f"{topic}:={target}"]
    return args


def start_nodes(values: dict[str, str], context=None) -> list:
    """Create the nodes the launch file would start, with the same parameters and remappings."""
    from rclpy.parameter import Parameter

    nodes = []
    try:
        for spec in ld.nodes_to_start(values):
            overrides = [Parameter(name, value=value) for name, value in ld.node_parameters(spec, values).items()]
            nodes.append(node_class(spec.executable)(context=context, cli_args=node_cli_args(spec, values),
                                                     parameter_overrides=overrides))
    except BaseException:
        for node in nodes:
            node.destroy_node()
        raise
    return nodes


def get_args_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {a.name}:=<{a.default or 'required'}>  {a.description}" for a in ld.LAUNCH_ARGUMENTS)
    parser = argparse.ArgumentParser(
        prog="bringup", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Start sim_camera_node, descriptor_node and grasp_node in one process (pip users' "
                    "grasp.launch.py).", epilog="launch arguments:\n" + lines)
    parser.add_argument("arguments", nargs="*", help="name:=value launch arguments")
    return parser


def main(argv=None) -> int:
    import rclpy
    from rclpy.exceptions import ParameterException
    from rclpy.executors import ExternalShutdownException, MultiThreadedExecutor

    argv = sys.argv[1:] if argv is None else list(argv)
    ros_args = []
    if "--ros-args" in argv:
        i = argv.index("--ros-args")
        argv, ros_args = argv[:i], argv[i:]
    args = get_args_parser().parse_args(argv)
    try:
        values = parse_arguments(args.arguments)
    except ValueError as exc:
        print(f"bringup: {exc}", file=sys.stderr)
        return 2
    if ld.parse_bool(values[ld.RVIZ.condition], ld.RVIZ.condition):
        print("bringup: RViz is not started by the pip bringup; run `rviz2 -d config/grasp.rviz` from a ROS 2 "
              "install to view the topics.", file=sys.stderr)
    rclpy.init(args=ros_args or None)
    nodes = []
    executor = MultiThreadedExecutor()
    try:
        nodes = start_nodes(values)
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RuntimeError, ValueError, ParameterException) as exc:
        print(f"bringup: startup failed: {exc}", file=sys.stderr)
        return 1
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
