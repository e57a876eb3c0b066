"""demo_observer: the node the demo (``dense_descriptor_grasp.demo``, step 5) runs beside the bringup's nodes.

Not an executable of its own: the demo adds it to the executor of its in-process pipeline. It subscribes
(reliable) to ``sim/object_pose``, ``grasp/pose``, ``grasp/markers``, ``camera/color/camera_info``,
``camera/color/image_raw``, ``descriptors/preview`` and ``grasp/heatmap`` and keeps, per object pose, the frames
the grasp node processed, the first grasp and the images of that frame.
"""
from __future__ import annotations

import threading
import time
from collections import OrderedDict

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.node import Node
from rclpy.qos import QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image
from visualization_msgs.msg import MarkerArray

from dense_descriptor_grasp.geometry.se3 import matrix_from_quaternion
from dense_descriptor_grasp.image_msgs import camera_info_to_K, image_to_numpy

__all__ = ["DemoObserver", "pose_matrix"]


def pose_matrix(msg) -> np.ndarray:
    """``(4, 4)`` matrix of a ``geometry_msgs/PoseStamped``."""
    o, p = msg.pose.orientation, msg.pose.position
    T = np.eye(4)
    T[:3, :3] = np.asarray(matrix_from_quaternion(np.array([o.x, o.y, o.z, o.w], dtype=np.float64)))
    T[:3, 3] = (p.x, p.y, p.z)
    return T


class DemoObserver(Node):
    """Records what the pipeline publishes, keyed by the image stamp (ns); thread safe under ``lock``.

    With ``camera_node`` (the in-process sim camera, ``pose_period`` at "hold"), :meth:`next_pose` asks it for
    exactly one new object pose (``SimCameraNode.request_new_pose``): each pose stays until the pipeline has
    processed it, however slow the machine, and no pose is skipped. ``keep``: images and marker texts kept per
    topic (the newest).
    """

    def __init__(self, context=None, camera_node=None, keep: int = 80):
        super().__init__("demo_observer", context=context)
        self.keep = keep
        self.lock = threading.Lock()
        self.pose_of_stamp = OrderedDict()    # stamp -> pose index
        self.poses = []                       # index -> T_camera_object
        self.images = {k: OrderedDict() for k in ("rgb", "preview", "heatmap")}
        self.grasps = {}                      # pose index -> (stamp, T_camera_grasp)
        self.modes = OrderedDict()            # stamp -> marker text ("object_pose conf 0.83" / "no grasp")
        self.processed = {}                   # pose index -> frames the grasp node finished
        self.max_processed = -1
        self.first_processed = {}             # pose index -> monotonic time of its first processed frame
        self.grasp_arrival = {}               # pose index -> monotonic time its grasp arrived
        self.K = None
        self.camera_node = camera_node
        self.advancing = False
        qos = QoSProfile(depth=20, reliability=ReliabilityPolicy.RELIABLE)
        self.create_subscription(PoseStamped, "sim/object_pose", self._on_object_pose, qos)
        self.create_subscription(PoseStamped, "grasp/pose", self._on_grasp, qos)
        self.create_subscription(MarkerArray, "grasp/markers", self._on_markers, qos)
        self.create_subscription(CameraInfo, "camera/color/camera_info", self._on_info, qos)
        for key, topic in (("rgb", "camera/color/image_raw"), ("preview", "descriptors/preview"),
                           ("heatmap", "grasp/heatmap")):
            self.create_subscription(Image, topic, lambda m, k=key: self._on_image(k, m), qos)

    @staticmethod
    def stamp(msg) -> int:
        return msg.header.stamp.sec * 1_000_000_000 + msg.header.stamp.nanosec

    def _remember(self, table, key, value):
        table[key] = value
        while len(table) > self.keep:
            table.popitem(last=False)

    def _on_info(self, msg):
        if self.K is None:
            self.K = camera_info_to_K(msg)

    def _on_object_pose(self, msg):
        T = pose_matrix(msg)
        with self.lock:
            if not self.poses or not np.allclose(self.poses[-1], T, atol=1e-6):
                self.poses.append(T)
                self.advancing = False
            self.pose_of_stamp[self.stamp(msg)] = len(self.poses) - 1
            while len(self.pose_of_stamp) > 10 * self.keep:
                self.pose_of_stamp.popitem(last=False)

    def _on_image(self, key, msg):
        img = image_to_numpy(msg)
        with self.lock:
            self._remember(self.images[key], self.stamp(msg), img)
            if key == "heatmap":
                index = self.pose_of_stamp.get(self.stamp(msg))
                if index is not None:
                    self.processed[index] = self.processed.get(index, 0) + 1
                    self.first_processed.setdefault(index, time.monotonic())
                    self.max_processed = max(self.max_processed, index)

    def _on_markers(self, msg):
        texts = [m.text for m in msg.markers if m.text]
        if texts and msg.markers:
            with self.lock:
                self._remember(self.modes, self.stamp(msg.markers[0]), texts[0])

    def _on_grasp(self, msg):
        stamp = self.stamp(msg)
        with self.lock:
            index = self.pose_of_stamp.get(stamp)
            if index is not None and index not in self.grasps:
                self.grasps[index] = (stamp, pose_matrix(msg))
                self.grasp_arrival[index] = time.monotonic()

    def finished(self, index: int, settle: float = 0.5) -> bool:
        """Pose ``index`` is done: its grasp and that frame's heatmap arrived, or a frame of it was processed
        ``settle`` s ago without a grasp, or a later pose was processed already."""
        if self.max_processed > index:
            return True
        if index in self.grasps:  # wait for that frame's heatmap and markers (other topics), at most 2 s
            stamp = self.grasps[index][0]
            return (stamp in self.images["heatmap"] and stamp in self.modes) or \
                time.monotonic() - self.grasp_arrival[index] > 2.0
        first = self.first_processed.get(index)
        return first is not None and time.monotonic() - first > settle

    def next_pose(self) -> None:
        """Ask the sim camera for one new object pose at its next frame (call with ``lock`` held)."""
        if self.camera_node is not None and not self.advancing:
            self.advancing = True
            self.camera_node.request_new_pose()
