"""Helpers of the node tests (real rclpy + Fast DDS): an isolated ROS graph, a spinning executor, /rosout capture,
a tiny checkpoint and a reference made from a simulated view."""
from __future__ import annotations

import contextlib
import os
import threading
import time

import numpy as np

TIMEOUT_S = 20.0
SIZE = (64, 80)          # (H, W) of every image in the node tests
D = 8


ROS_ENV = ("ROS_DOMAIN_ID", "ROS_AUTOMATIC_DISCOVERY_RANGE", "ROS_LOCALHOST_ONLY")


def isolate_ros_graph(offset: int) -> dict:
    """A ROS_DOMAIN_ID unique to this test process (pid based, offset per test file), localhost discovery only.

    Returns the previous values for :func:`restore_ros_env` (the variables are read at ``rclpy.init``)."""
    previous = {k: os.environ.get(k) for k in ROS_ENV}
    os.environ["ROS_DOMAIN_ID"] = str(101 + (os.getpid() * 7 + offset) % 100)
    os.environ["ROS_AUTOMATIC_DISCOVERY_RANGE"] = "LOCALHOST"
    os.environ.pop("ROS_LOCALHOST_ONLY", None)
    return previous


def restore_ros_env(previous: dict) -> None:
    for key, value in previous.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def write_tiny_checkpoint(path, descriptor_dim: int = D, seed: int = 0, input: str = "rgb"):
    import torch

    from dense_descriptor_grasp.model import DenseDescriptorNet, save_checkpoint

    torch.manual_seed(seed)
    model = DenseDescriptorNet(descriptor_dim=descriptor_dim, num_keypoints=3, output_stride=8, input=input)
    save_checkpoint(path, model, config={"input_size": list(SIZE)})
    return path


class RosGraph:
    """One context, the pipeline's executor (``nodes.common.pipeline_executor``, as bringup) spinning on a thread, a
    test node, /rosout collected."""

    def __init__(self):
        import rclpy
        from rcl_interfaces.msg import Log
        from rclpy.context import Context
        from rclpy.qos import DurabilityPolicy, QoSProfile, ReliabilityPolicy

        self.rclpy = rclpy
        self.context = Context()
        rclpy.init(context=self.context)
        from dense_descriptor_grasp.nodes.common import pipeline_executor

        self.executor = pipeline_executor(self.context)
        self.node = rclpy.create_node("test_probe", context=self.context)
        self.executor.add_node(self.node)
        self.logs = []
        self._lock = threading.Lock()
        qos = QoSProfile(depth=1000, reliability=ReliabilityPolicy.RELIABLE,
                         durability=DurabilityPolicy.TRANSIENT_LOCAL)
        self.node.create_subscription(Log, "/rosout", self._on_log, qos)
        self.nodes = []
        self._thread = threading.Thread(target=self._spin, daemon=True)
        self._thread.start()

    def _spin(self):
        try:
            self.executor.spin()
        except Exception:  # noqa: BLE001 - shutdown races
            pass

    def _on_log(self, msg):
        with self._lock:
            self.logs.append((msg.name, msg.level, msg.msg))

    def add(self, node_class, parameters: dict | None = None, remap: dict | None = None):
        from rclpy.parameter import Parameter

        args = []
        for a, b in (remap or {}).items():
            args += ["-r", f"{a}:={b}"]
        node = node_class(context=self.context,
                          parameter_overrides=[Parameter(k, value=v) for k, v in (parameters or {}).items()],
                          cli_args=(["--ros-args"] + args) if args else None)
        self.nodes.append(node)
        self.executor.add_node(node)
        return node

    def remove(self, node):
        self.executor.remove_node(node)
        self.nodes.remove(node)
        node.destroy_node()

    def collect(self, msg_type, topic, qos=None):
        from dense_descriptor_grasp.nodes.common import reliable_qos

        got = []
        self.node.create_subscription(msg_type, topic, got.append, qos or reliable_qos(10))
        return got

    def log_text(self, node_name: str) -> str:
        with self._lock:
            return "\n".join(m for n, _, m in self.logs if n.endswith(node_name))

    def wait_log(self, node_name: str, text: str, timeout: float = TIMEOUT_S) -> bool:
        return wait_until(lambda: text in self.log_text(node_name), timeout)

    def close(self):
        for node in list(self.nodes):
            self.remove(node)
        self.executor.shutdown(timeout_sec=2.0)
        self.node.destroy_node()
        self.rclpy.try_shutdown(context=self.context)
        self._thread.join(5.0)


def wait_until(condition, timeout: float = TIMEOUT_S, period: float = 0.02) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(period)
    return bool(condition())


def reference_from_sim_view(checkpoint, path, seed: int = 0, n_refs: int = 4):
    """Render the sim camera's first view (same seed and size as the node), run the model, and write a reference
    with ``n_refs`` pixels spread over the object. Returns (reference, view)."""
    from dense_descriptor_grasp.geometry.camera import backproject
    from dense_descriptor_grasp.grasping.grasp_pose import grasp_pose_at
    from dense_descriptor_grasp.grasping.reference import Reference, save_reference
    from dense_descriptor_grasp.model import load_model
    from dense_descriptor_grasp.model.inference import descriptor_image, descriptors_at
    from dense_descriptor_grasp.sim.cameras import SimCamera

    sim = SimCamera(["duck"], SIZE[1], SIZE[0], seed=seed, backgrounds=("textured",))
    try:
        view = sim.new_pose()
    finally:
        sim.close()
    model = load_model(checkpoint)
    desc = descriptor_image(model, view.rgb)
    # object pixels well inside the mask (eroded), spread out: farthest-point picks
    import cv2
    inner = cv2.erode((view.mask > 0).astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    vs, us = np.nonzero(inner & (view.depth > 0))
    candidates = np.stack([us, vs], 1).astype(float)
    picks = [len(candidates) // 2]
    for _ in range(n_refs - 1):
        dist = np.min(np.linalg.norm(candidates[:, None] - candidates[picks][None], axis=-1), axis=1)
        picks.append(int(np.argmax(dist)))
    pixels = candidates[picks]
    z = view.depth[pixels[:, 1].astype(int), pixels[:, 0].astype(int)].astype(np.float64)
    points = np.asarray(backproject(pixels, z, view.K))
    grasp = grasp_pose_at(points[0], view.depth, view.K, pixels[0])
    ref = Reference(model.identity, descriptors_at(desc, pixels), pixels, points,
                    names=[f"part{i}" for i in range(n_refs)], method=model.method, K=view.K, image_size=SIZE,
                    T_ref_grasp=grasp.matrix, grasp_index=0, source="sim view seed 0")
    save_reference(path, ref)
    return ref, view


@contextlib.contextmanager
def ros_graph(offset: int):
    """A :class:`RosGraph` on its own isolated domain (``isolate_ros_graph(offset)``), closed and restored after."""
    previous = isolate_ros_graph(offset)
    g = RosGraph()
    try:
        yield g
    finally:
        g.close()
        restore_ros_env(previous)
