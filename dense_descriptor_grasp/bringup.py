"""``bringup``: the pip users' equivalent of ``ros2 launch dense_descriptor_grasp grasp.launch.py``.

    bringup model:=models/model.pt reference:=models/reference.npz [use_sim_camera:=true] [device:=cpu]
            [color_topic:=...] [depth_topic:=...] [camera_info_topic:=...] [params_file:=config/grasp.yaml]

Same arguments (``name:=value``), same nodes, remappings and parameter overrides as the launch file: both read
:mod:`dense_descriptor_grasp.launch_description`. The nodes run in one process on one executor thread
(:func:`~dense_descriptor_grasp.nodes.common.pipeline_executor`, which says why);
each loads its ``<node_name>: ros__parameters:`` block of ``params_file`` (default: the repository's or the
installed ``config/grasp.yaml``). RViz is not started here (``rviz:=true`` prints how to start it).

Like the launch file (``grasp.launch.py`` checks with :func:`preflight_errors` before starting anything and ends
the whole launch when a node exits), bringup refuses a ``params_file`` that does not exist before any node starts
(exit code 2, one line), and ends as a whole (exit code 1, one line naming the node) when a node fails: at
startup (missing model, bad reference, refused parameter) or later (an exception out of a callback). Argument
errors (not ``name:=value``, unknown names, bad choices) are named, exit code 2.
"""
from __future__ import annotations

import argparse
import importlib
import os
import shutil
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


def rviz2_executable() -> str | None:
    """Path of the rviz2 executable launch_ros would start (``lib/rviz2/rviz2`` of the rviz2 package in the ament
    index), else ``rviz2`` on PATH; None when there is none."""
    try:
        from ament_index_python.packages import get_package_prefix

        path = os.path.join(get_package_prefix(ld.RVIZ.package), "lib", ld.RVIZ.package, ld.RVIZ.executable)
        if os.access(path, os.X_OK):
            return path
    except Exception:  # noqa: BLE001 - no ament index (pip install) or no rviz2 package
        pass
    return shutil.which(ld.RVIZ.executable)


def preflight_errors(values: dict[str, str], *, check_rviz: bool = False, find_rviz=None) -> list[str]:
    """What must stop the launch before any node starts, for the resolved argument ``values``.

    A ``params_file`` that is not an existing file (launch_ros would only warn and run the nodes on built-in
    defaults); with ``check_rviz`` and ``rviz:=true``, no rviz2 (the launch would start the other nodes and then
    fail on RViz, leaving them behind). ``grasp.launch.py`` and :func:`main` both call it.
    """
    errors = []
    params_file = values[ld.PARAMS_FILE_ARGUMENT]
    if not params_file:
        errors.append("params_file is empty: pass a YAML parameter file (default: the installed config/grasp.yaml)")
    elif not os.path.isfile(params_file):
        errors.append(f"params_file {params_file!r} does not exist")
    if check_rviz and ld.parse_bool(values[ld.RVIZ.condition], ld.RVIZ.condition):
        if (find_rviz or rviz2_executable)() is None:
            errors.append(f"{ld.RVIZ.condition}:=true but rviz2 is not installed (no package '{ld.RVIZ.package}' in "
                          f"the ament index, no '{ld.RVIZ.executable}' on PATH): install ros-$ROS_DISTRO-rviz2 or "
                          f"pass {ld.RVIZ.condition}:=false")
    return errors


def node_class(executable: str):
    module, cls = NODE_CLASSES[executable].split(":")
    return getattr(importlib.import_module(module), cls)


def node_cli_args(spec, values: dict[str, str]) -> list[str]:
    """``--ros-args`` for one node: the params file, then remappings (launch_ros passes the same)."""
    args = ["--ros-args", "-r", f"__node:={spec.name}"]
    params_file = values[ld.PARAMS_FILE_ARGUMENT]
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
    from rclpy.executors import ExternalShutdownException

    from dense_descriptor_grasp.nodes.common import pipeline_executor

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
    errors = preflight_errors(values)
    if errors:
        print(f"bringup: {'; '.join(errors)}; no node started", file=sys.stderr)
        return 2
    if ld.parse_bool(values[ld.RVIZ.condition], ld.RVIZ.condition):
        print("bringup: RViz is not started by the pip bringup; run `rviz2 -d config/grasp.rviz` from a ROS 2 "
              "install to view the topics.", file=sys.stderr)
    # only --ros-args reach rcl (with a program name first, as in sys.argv): the launch-style name:=value
    # arguments would be read as deprecated remap rules ("Found remap rule 'use_sim_camera:=false'")
    rclpy.init(args=["bringup", *ros_args])
    nodes = []
    executor = pipeline_executor()
    code = 0
    try:
        nodes = start_nodes(values)
        for node in nodes:
            executor.add_node(node)
        executor.spin()
    except (KeyboardInterrupt, ExternalShutdownException):
        pass
    except (RuntimeError, ValueError, ParameterException) as exc:
        if nodes:   # an exception out of a running node's callback: the whole bringup ends with it
            print(f"bringup: stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        else:
            print(f"bringup: startup failed: {exc}", file=sys.stderr)
        code = 1
    except Exception as exc:  # noqa: BLE001 - any other failure of a node ends everything, in one line
        print(f"bringup: stopped: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 1
    finally:
        executor.shutdown()
        for node in nodes:
            node.destroy_node()
        rclpy.try_shutdown()
    return code


if __name__ == "__main__":
    sys.exit(main())
