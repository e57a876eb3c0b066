"""capture_dataset: keeps keyframes of a live RGB-D camera and writes them into a capture folder.

Subscribes (as descriptor_node: same default topics, remapping names, camera_reliability and approximate time sync):
    camera/color/image_raw (rgb8 | bgr8 | rgba8 | bgra8), camera/depth/image_raw (16UC1 | 32FC1 m, registered to
    colour), camera/color/camera_info
    /tf, /tf_static (tf2_msgs/TFMessage), only when ``world_frame`` is set
Service:
    ~/capture (std_srvs/srv/Trigger): keep the next synced frame set (``ros2 service call
    /capture_dataset/capture std_srvs/srv/Trigger``); answers at once (the frame is written when it arrives; with
    TF, when its pose is known), ``success: false`` once ``max_frames`` are kept.
Writes:
    ``output_dir`` (required) in the layout :func:`dense_descriptor_grasp.capture.importer.read_capture_folder`
    reads (Open3D's recorder layout: color/, 16-bit depth/ in millimetres, camera_intrinsic.json, capture.json,
    poses.json with T_world_camera from TF), one frame at a time, atomically, through
    :class:`~dense_descriptor_grasp.capture.keyframes.CaptureFolderWriter`; an existing capture is resumed (numbering
    continues; another camera's folder is refused).

Keyframes (:class:`~dense_descriptor_grasp.capture.keyframes.KeyframeSelector`), ``keyframe_mode``:
    ``auto``: with TF (``world_frame`` set), a frame set is kept when the camera moved more than ``min_translation``
    m or turned more than ``min_rotation_deg`` since the last keyframe; without TF, every ``interval`` s (0 = only
    on request). Requests are always served. ``request``: only the service keeps frames.
    With TF, a frame set whose pose ``T_world_camera`` cannot be looked up (a link missing, or the chain's newest
    dynamic transform more than ``tf_max_age`` s older than the image) is never kept, so every frame of the
    capture has a pose.
Progress: one log line per keyframe ("kept 12 / 40 frames ..."); at ``max_frames`` the node stops keeping frames
(and says so once); Ctrl-C to end.
"""
from __future__ import annotations

import os

from rclpy.qos import DurabilityPolicy, HistoryPolicy, QoSProfile, ReliabilityPolicy
from sensor_msgs.msg import CameraInfo, Image

from dense_descriptor_grasp.capture.frames import Frame
from dense_descriptor_grasp.capture.keyframes import CaptureFolderWriter, KeyframeSelector
from dense_descriptor_grasp.capture.tf_chain import TfLookupError, TransformTree
from dense_descriptor_grasp.image_msgs import FrameSetError, decode_camera_set

from .common import SettingSpec, SyncedInputNode, camera_qos, run_node, stamp_seconds, synced_input_specs
from .descriptor_node import PARAMETERS as _DESCRIPTOR_PARAMETERS

NODE_NAME = "capture_dataset"
KEYFRAME_MODES = ("auto", "request")
_CAMERA_SPECS = {s.name: s for s in _DESCRIPTOR_PARAMETERS
                 if s.name in ("camera_reliability", "camera_queue_depth", "depth_scale")}

PARAMETERS = (
    SettingSpec("output_dir", "", "Capture folder the keyframes are written to (created; an existing capture is "
                "resumed). Required.", read_only=True),
    SettingSpec("max_frames", 0, "Stop keeping frames once the folder holds this many (resumed frames count); "
                "0 = no limit.", 0, 1000000),
    SettingSpec("keyframe_mode", "auto", "auto: keep a frame when the camera moved enough (with TF) or every "
                "'interval' s (without TF), and on request; request: only on the ~/capture service.",
                choices=KEYFRAME_MODES),
    SettingSpec("min_translation", 0.05, "Keep a frame when the camera moved more than this (m) since the last "
                "keyframe (auto mode, with TF).", 0.001, 10.0),
    SettingSpec("min_rotation_deg", 10.0, "... or turned more than this (degrees).", 0.1, 180.0),
    SettingSpec("interval", 1.0, "Without TF: keep a frame every this many seconds of image stamps (auto mode); "
                "0 = only on request.", 0.0, 3600.0),
    SettingSpec("world_frame", "", "TF frame the camera poses are expressed in (e.g. base_link or map); empty = "
                "no TF (no poses: frames by interval or on request). Needs tf2_msgs.", read_only=True),
    SettingSpec("camera_frame", "", "TF frame of the camera's optical frame (z forward, x right); empty = the "
                "colour image's header.frame_id.", read_only=True),
    SettingSpec("tf_max_age", 0.5, "With TF: a frame set is not kept when the newest transform of a moving link "
                "of world_frame -> camera_frame is more than this many seconds older than the image; 0 = no "
                "check.", 0.0, 3600.0),
    _CAMERA_SPECS["depth_scale"],
    *synced_input_specs(0.05),
    _CAMERA_SPECS["camera_reliability"],
    _CAMERA_SPECS["camera_queue_depth"],
)


def tf_qos(static: bool) -> QoSProfile:
    """/tf: reliable volatile keep-last 100; /tf_static: reliable transient-local (latched) keep-last 100, as
    tf2_ros's listener."""
    return QoSProfile(history=HistoryPolicy.KEEP_LAST, depth=100, reliability=ReliabilityPolicy.RELIABLE,
                      durability=DurabilityPolicy.TRANSIENT_LOCAL if static else DurabilityPolicy.VOLATILE)


class CaptureNode(SyncedInputNode):
    INPUTS_TEXT = "camera inputs"
    MISSING_CONSEQUENCE = "no frame is kept until every input arrives"
    QOS_HINT = ("set capture_dataset's camera_reliability to match the camera driver (or the driver's QoS to "
                "reliable: best-effort full-size frames are lost across processes)")

    def __init__(self, **kwargs):
        super().__init__(NODE_NAME, PARAMETERS, extra_checks={
            "output_dir": lambda v: "" if v.strip() else "is empty: give the capture folder "
                                                         "(--ros-args -p output_dir:=/path/to/capture)",
        }, **kwargs)
        self.output_dir = os.path.abspath(os.path.expanduser(self.param("output_dir")))
        try:
            self.writer = CaptureFolderWriter(self.output_dir)
        except (ValueError, OSError) as exc:
            raise RuntimeError(f"{NODE_NAME}: cannot use output_dir={self.output_dir!r}: {exc}") from exc
        self.selector = KeyframeSelector(self.param("min_translation"), self.param("min_rotation_deg"),
                                         self.param("interval"), self.param("keyframe_mode") == "auto")
        last = self.writer.last
        if last is not None:        # resumed: the next keyframe is measured from the capture's last frame
            self.selector.keep(last[1], last[2], "resumed")
        self.world_frame = self.param("world_frame").strip().lstrip("/")
        self.camera_frame = self.param("camera_frame").strip().lstrip("/")
        self.tf = TransformTree()
        self._complete_logged = False
        self._refusal = ""            # why the last frame set to keep was not written ("" after a success)
        if self.world_frame:
            self._start_tf()
        elif self.camera_frame:
            self.get_logger().warning("camera_frame is set but world_frame is empty: TF is not used (no poses)")

        from std_srvs.srv import Trigger

        self.capture_service = self.create_service(Trigger, "~/capture", self._on_capture)
        self._start_inputs(("camera/color/image_raw", "camera/depth/image_raw", "camera/color/camera_info"),
                           (Image, Image, CameraInfo),
                           camera_qos(self.param("camera_reliability"), self.param("camera_queue_depth")),
                           "capture_writer")
        inputs = ", ".join(f"{self.resolve_topic_name(t)} ({s.qos_profile.reliability.name})"
                           for t, s in zip(self.topics, self.input_subscriptions))
        self._finish_startup()
        resumed = (f"resuming a capture of {self.writer.resumed} frames" if self.writer.resumed else "new capture")
        if self.writer.removed:
            resumed += f" (removed an unfinished frame's files: {', '.join(self.writer.removed)})"
        poses = (f"poses from TF {self.world_frame} -> {self.camera_frame or '<colour frame_id>'}"
                 if self.world_frame else "no TF (frames without poses)")
        self.get_logger().info(
            f"{NODE_NAME} ready: {resumed} in {self.output_dir}; {self._progress()} kept; keyframes: "
            f"{self._mode_text()}; {poses}; subscribing {inputs}; service {self.capture_service.service_name}")

    # ------------------------------------------------------------------ setup helpers
    def _start_tf(self) -> None:
        try:
            from tf2_msgs.msg import TFMessage
        except ImportError as exc:
            raise RuntimeError(
                f"{NODE_NAME}: world_frame={self.world_frame!r} asks for camera poses from /tf, but tf2_msgs is not "
                f"installed ({exc}; there is no pip wheel of it: use a ROS 2 install, e.g. apt install "
                "ros-kilted-tf2-msgs), or leave world_frame empty to keep frames by interval / on request and "
                "estimate the poses later (build_capture_dataset)") from None
        self.tf_subscriptions = [
            self.create_subscription(TFMessage, "/tf", lambda msg: self._on_tf(msg, False), tf_qos(False)),
            self.create_subscription(TFMessage, "/tf_static", lambda msg: self._on_tf(msg, True), tf_qos(True)),
        ]

    def _mode_text(self) -> str:
        if not self.selector.automatic:
            return "on request only"
        if self.world_frame:
            return (f"when the camera moved > {self.selector.min_translation} m or > "
                    f"{self.selector.min_rotation_deg} deg, and on request")
        if self.selector.interval > 0:
            return f"every {self.selector.interval} s, and on request"
        return "on request only (interval 0)"

    def _progress(self) -> str:
        limit = int(self.param("max_frames"))
        return f"{len(self.writer)} / {limit if limit else 'unlimited'} frames"

    def _apply_change(self, changes: dict) -> None:
        s = self.selector
        s.min_translation = float(changes.get("min_translation", s.min_translation))
        s.min_rotation_deg = float(changes.get("min_rotation_deg", s.min_rotation_deg))
        s.interval = float(changes.get("interval", s.interval))
        if "keyframe_mode" in changes:
            s.automatic = changes["keyframe_mode"] == "auto"
        if "max_frames" in changes:
            self._complete_logged = False

    def _complete(self) -> bool:
        limit = int(self.param("max_frames"))
        return bool(limit) and len(self.writer) >= limit

    def _log_complete(self) -> None:
        if not self._complete_logged:
            self._complete_logged = True
            self.get_logger().info(f"capture complete: {self._progress()} kept in {self.output_dir}; no more frames "
                                   "are kept (raise max_frames to continue; Ctrl-C to end)")

    # ------------------------------------------------------------------ callbacks (never raise)
    def _on_tf(self, msg, static: bool) -> None:
        try:
            problems = self.tf.add_messages(msg.transforms, static)
            if problems:
                self.log.warn("tf_message", f"transform(s) on {'/tf_static' if static else '/tf'} ignored: "
                                            f"{'; '.join(problems[:3])}")
        except Exception as exc:  # noqa: BLE001
            self.log.warn("tf_message", f"TF message ignored: {type(exc).__name__}: {exc}")

    def _on_capture(self, request, response):
        try:
            if self._complete():
                response.success = False
                response.message = (f"max_frames reached: {self._progress()} kept in {self.output_dir}; raise "
                                    "max_frames to keep more")
                return response
            self.selector.request()
            if self._refusal:
                response.success = False
                response.message = (f"requested, but the last frame set to keep was refused: {self._refusal} "
                                    f"({self._progress()} kept in {self.output_dir})")
                return response
            response.success = True
            when = " once its TF pose is known" if self.world_frame else ""
            response.message = (f"the next synced frame set will be kept{when} ({self._progress()} kept so far, "
                                f"in {self.output_dir})")
            self.get_logger().info(f"capture requested: {response.message}")
        except Exception as exc:  # noqa: BLE001
            response.success = False
            response.message = f"{type(exc).__name__}: {exc}"
        return response

    def _process(self, frame) -> None:
        color_msg, depth_msg, info_msg = frame
        if self._complete():
            self._log_complete()
            return
        desc = (f"colour {color_msg.encoding} {color_msg.width}x{color_msg.height} frame "
                f"'{color_msg.header.frame_id}', depth {depth_msg.encoding} {depth_msg.width}x{depth_msg.height}, "
                f"camera_info {info_msg.width}x{info_msg.height}")
        stamp = stamp_seconds(color_msg.header.stamp)
        T_world_camera = None
        if self.world_frame:
            T_world_camera = self._camera_pose(color_msg.header.frame_id, stamp)
            if T_world_camera is None:
                return
        reason = self.selector.decide(stamp, T_world_camera)
        if reason is None:
            return
        try:
            rgb, depth, K = decode_camera_set(color_msg, depth_msg, info_msg, self.param("depth_scale"),
                                              check_intrinsics=True)
            keyframe = Frame.from_arrays(rgb, depth, K, name=self.writer.next_name, T_world_camera=T_world_camera,
                                         stamp=stamp)
        except FrameSetError as exc:
            self.log.warn(exc.key, f"frame set dropped: {exc} ({desc})")
            return
        except ValueError as exc:
            self.log.warn("decode", f"frame set dropped: {exc} ({desc})")
            return
        motion = self.selector.motion_since_last(T_world_camera)
        try:
            name = self.writer.append(keyframe)
        except ValueError as exc:       # another camera than the capture's
            self._refusal = str(exc)
            self.log.error("camera", f"frame set not kept: {exc}")
            return
        except OSError as exc:
            self._refusal = f"writing to {self.output_dir} failed: {exc}"
            self.log.error("write", f"frame set not kept: {self._refusal}")
            return
        self._refusal = ""
        self.selector.keep(stamp, T_world_camera, reason)
        why = reason if motion is None or reason != "moved" else f"moved {motion[0]:.3f} m, {motion[1]:.1f} deg"
        self.get_logger().info(f"kept {self._progress()} ({name}: {why}) in {self.output_dir}")
        if self._complete():
            self._log_complete()

    def _camera_pose(self, color_frame_id: str, stamp: float):
        camera_frame = self.camera_frame or color_frame_id.lstrip("/")
        if not camera_frame:
            self.log.warn("tf", "frame set not kept: the colour image has no header.frame_id and camera_frame is "
                                "empty: set camera_frame")
            return None
        try:
            T, oldest = self.tf.lookup_stamped(self.world_frame, camera_frame)
        except TfLookupError as exc:
            self.log.warn("tf", f"frame set not kept (no camera pose): {exc}")
            return None
        max_age = float(self.param("tf_max_age"))
        if max_age > 0 and oldest is not None and stamp - oldest > max_age:
            self.log.warn("tf_age", f"frame set not kept: TF {self.world_frame} -> {camera_frame} is "
                                    f"{stamp - oldest:.2f} s older than the image (tf_max_age {max_age} s)")
            return None
        return T


def main(args=None):
    run_node(CaptureNode, args)


if __name__ == "__main__":
    main()
