"""sim_camera_node: a simulated RGB-D camera over a pybullet scene (no hardware needed).

The ROS shell around :mod:`dense_descriptor_grasp.sim.cameras` (``SimCamera``: the object(s) rendered with
:mod:`dense_descriptor_grasp.data.render` from a fixed camera; ``DatasetReplay``): every ``pose_period`` seconds
the object gets a new random pose on the support plane (seeded), and the scene is rendered once; between pose
changes the same images are re-published with fresh stamps at ``rate``. With ``dataset_path`` set it replays the
views of a dataset folder instead (one view per ``pose_period``).

Publishes (reliable, one stamp per set, frame ``frame_id`` = the camera optical frame):
    camera/color/image_raw (rgb8), camera/depth/image_raw (32FC1 metres, NaN = no depth; or 16UC1 mm),
    camera/color/camera_info, sim/object_pose (geometry_msgs/PoseStamped: ground-truth T_camera_object of
    the first object, in the camera optical frame, for live accuracy checks)
"""
from __future__ import annotations

import threading

import numpy as np
from geometry_msgs.msg import PoseStamped
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import Header

from dense_descriptor_grasp.geometry.se3 import quaternion_from_matrix
from dense_descriptor_grasp.image_msgs import make_camera_info, numpy_to_image
from dense_descriptor_grasp.launch_description import CAMERA_FRAME
from dense_descriptor_grasp.sim.cameras import DatasetReplay, SimCamera

from .common import PipelineNode, SettingSpec, reliable_qos, run_node

DEPTH_ENCODINGS = ("32FC1", "16UC1")


PARAMETERS = (
    SettingSpec("rate", 5.0, "Frames per second published (applied at runtime).", 0.1, 60.0),
    SettingSpec("width", 320, "Image width (px).", 16, 1920, read_only=True),
    SettingSpec("height", 240, "Image height (px).", 16, 1080, read_only=True),
    SettingSpec("fov_deg", 50.0, "Vertical field of view (deg).", 10.0, 120.0, read_only=True),
    SettingSpec("objects", ["duck"], "Objects in the scene (pybullet_data names such as duck, teddy, lego, or "
                ".urdf/.obj paths); the first one's pose is published on sim/object_pose.", read_only=True),
    SettingSpec("pose_period", 3.0, "Seconds between new random object poses.", 0.1, 3600.0),
    SettingSpec("seed", 0, "Seed of the object poses.", 0, 2**31 - 1, read_only=True),
    SettingSpec("frame_id", CAMERA_FRAME, "Camera optical frame id of every published header."),
    SettingSpec("depth_encoding", "32FC1", "Depth image encoding.", choices=DEPTH_ENCODINGS),
    SettingSpec("background", "textured", "Background kind of the support plane (see data.backgrounds).",
                read_only=True),
    SettingSpec("camera_elevation_deg", 55.0, "Camera elevation above the plane (deg).", 5.0, 90.0, read_only=True),
    SettingSpec("dataset_path", "", "Replay this dataset folder (docs/DATA.md) instead of rendering a pybullet "
                "scene; each view is shown for pose_period seconds.", read_only=True),
)


class SimCameraNode(PipelineNode):
    def __init__(self, **kwargs):
        # the base registers ONE set-parameters callback, validating then applying (_apply_change): rclpy runs
        # callbacks newest first, so a separate apply callback would change the rate before the rules refused
        super().__init__("sim_camera_node", PARAMETERS, extra_checks={
            "objects": lambda v: "" if len(v) >= 1 and all(v) else "needs at least one object name"}, **kwargs)
        g = lambda n: self.get_parameter(n).value  # noqa: E731
        try:
            if g("dataset_path"):
                self.sim = DatasetReplay(g("dataset_path"))
            else:
                self.sim = SimCamera(list(g("objects")), g("width"), g("height"), g("fov_deg"), g("seed"),
                                     (g("background"),), g("camera_elevation_deg"))
        except (ValueError, ImportError) as exc:
            raise RuntimeError(f"sim_camera_node: cannot build the camera source: {exc}") from exc
        qos = reliable_qos(2)
        overrides = QoSOverridingOptions.with_default_policies()
        self.pub_color = self.create_publisher(Image, "camera/color/image_raw", qos, qos_overriding_options=overrides)
        self.pub_depth = self.create_publisher(Image, "camera/depth/image_raw", qos, qos_overriding_options=overrides)
        self.pub_info = self.create_publisher(CameraInfo, "camera/color/camera_info", qos,
                                              qos_overriding_options=overrides)
        self.pub_pose = self.create_publisher(PoseStamped, "sim/object_pose", qos, qos_overriding_options=overrides)
        self._last_pose_change = None
        self._pose_requests = 0
        self._request_lock = threading.Lock()
        self.frames = 0
        self.poses = 0
        self.timer = self.create_timer(1.0 / g("rate"), self._tick)
        self._finish_startup()
        self.get_logger().info(f"sim_camera_node: {g('width')}x{g('height')} at {g('rate')} Hz, objects "
                               f"{list(g('objects'))}, new pose every {g('pose_period')} s")

    def _apply_change(self, changes: dict) -> None:
        """Only ``rate`` needs applying (the other runtime parameters are read at every frame)."""
        if "rate" in changes:
            self.timer.timer_period_ns = int(1e9 / changes["rate"])

    def request_new_pose(self) -> None:
        """In-process control (the demo): the next frame shows a new object pose, exactly one per request,
        independently of ``pose_period`` (thread-safe; a parameter round-trip could skip a pose when the caller's
        callbacks run late)."""
        with self._request_lock:
            self._pose_requests += 1

    def _tick(self) -> None:
        try:
            now = self.get_clock().now()
            t = now.nanoseconds * 1e-9
            with self._request_lock:
                requested = self._pose_requests > 0
                self._pose_requests -= int(requested)
            if requested or self._last_pose_change is None \
                    or t - self._last_pose_change >= self.get_parameter("pose_period").value:
                self.sim.new_pose()
                self._last_pose_change = t
                self.poses += 1
            self.publish_view(now.to_msg())
        except Exception as exc:  # noqa: BLE001 - a timer callback must not kill the node
            self.log.error("tick", f"frame not published: {type(exc).__name__}: {exc}")

    def publish_view(self, stamp) -> None:
        view = self.sim.view
        header = Header(stamp=stamp, frame_id=self.get_parameter("frame_id").value)
        h, w = view.depth.shape
        if self.get_parameter("depth_encoding").value == "16UC1":
            depth_msg = numpy_to_image(np.round(np.clip(view.depth, 0, 65.535) * 1000).astype(np.uint16), "16UC1",
                                       header)
        else:
            depth_msg = numpy_to_image(np.where(view.depth > 0, view.depth, np.nan).astype(np.float32), "32FC1",
                                       header)
        self.pub_color.publish(numpy_to_image(np.ascontiguousarray(view.rgb), "rgb8", header))
        self.pub_depth.publish(depth_msg)
        self.pub_info.publish(make_camera_info(view.K, w, h, header))
        T = self.sim.T_camera_object(0)
        if T is not None:
            pose = PoseStamped(header=header)
            pose.pose.position.x, pose.pose.position.y, pose.pose.position.z = (float(v) for v in T[:3, 3])
            q = np.asarray(quaternion_from_matrix(T[:3, :3]))
            (pose.pose.orientation.x, pose.pose.orientation.y, pose.pose.orientation.z,
             pose.pose.orientation.w) = (float(v) for v in q)
            self.pub_pose.publish(pose)
        self.frames += 1

    def destroy_node(self):
        sim = getattr(self, "sim", None)
        if sim is not None:
            sim.close()
        return super().destroy_node()


def main(args=None):
    run_node(SimCameraNode, args)


if __name__ == "__main__":
    main()
