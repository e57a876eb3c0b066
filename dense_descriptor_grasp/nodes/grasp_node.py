"""grasp_node: matches reference descriptors in the live descriptor image and publishes a grasp pose.

Subscribes (reliable keep-last 1, so stale sets are replaced, never queued; approximate time sync of the first
three; the preview is optional and only used as the heatmap background):
    descriptors/image (32FC<D>), descriptors/depth (32FC1 m or 16UC1 mm), descriptors/camera_info,
    descriptors/preview (rgb8)
Publishes (reliable):
    grasp/pose (geometry_msgs/PoseStamped, header = the descriptor image's header: camera optical frame,
                z axis = approach direction), only for a confident match with valid depth
    grasp/markers (visualization_msgs/MarkerArray, namespace "grasp": grasp point, approach arrow,
                confidence text, matched references), grasp/heatmap (rgb8)

Refused before any maths, with a throttled log naming the reason: a descriptor image with an empty
header.frame_id, a camera_info of another size than the descriptor image or with implausible intrinsics
(:func:`dense_descriptor_grasp.image_msgs.camera_info_for_image`).

The computation is :func:`dense_descriptor_grasp.grasping.grasp_estimate.estimate_grasp`.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from builtin_interfaces.msg import Duration
from geometry_msgs.msg import Point, PoseStamped
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from dense_descriptor_grasp.geometry.camera import decode_depth
from dense_descriptor_grasp.grasping.grasp_estimate import GRASP_SETTING_SPECS, GraspSettings, estimate_grasp
from dense_descriptor_grasp.grasping.matching import colorize_heatmap, heatmap
from dense_descriptor_grasp.grasping.reference import ReferenceMismatchError, load_reference
from dense_descriptor_grasp.image_msgs import camera_info_for_image, encoding_info, image_to_numpy, numpy_to_image

from .common import SettingSpec, SyncedInputNode, reliable_qos, run_node, stamp_seconds, synced_input_specs

MARKER_NS = "grasp"

PARAMETERS = (
    SettingSpec("reference_path", "", "Reference file (.npz/.json) from make_reference (launch argument "
                "'reference').", read_only=True),
    SettingSpec("model_path", "", "Optional: the descriptor node's checkpoint; when set, a reference made with "
                "another model or D is refused at startup.", read_only=True),
    SettingSpec("expected_model_identity", "", "Optional: refuse a reference whose model identity differs.",
                read_only=True),
    *GRASP_SETTING_SPECS,                       # the GraspSettings fields, one table for both
    SettingSpec("marker_lifetime", 0.5, "Lifetime of the RViz markers (s).", 0.0, 60.0),
    *synced_input_specs(0.02),
    SettingSpec("stats_period", 0.0, "Log frame count, latency (median, p95) and poses every this many seconds; "
                "0 = off (applied at runtime).", 0.0, 3600.0),
)
SETTINGS = tuple(spec.name for spec in GRASP_SETTING_SPECS)   # parameters that are GraspSettings fields


def read_model_identity(checkpoint_path: str) -> tuple[str, int]:
    """(identity, D) stored in a checkpoint, without building the network."""
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint_path)
    return str(ckpt.get("model_identity", "")), int(ckpt["model_config"]["descriptor_dim"])


class GraspNode(SyncedInputNode):
    INPUTS_TEXT = "descriptor inputs"
    MISSING_CONSEQUENCE = "no grasp is published"

    def __init__(self, **kwargs):
        # the base registers ONE set-parameters callback that validates the whole change (each value, then the
        # GraspSettings it gives, in _apply_change) and applies it only when all is accepted (issue 12, item 1)
        super().__init__("grasp_node", PARAMETERS, extra_checks={
            "reference_path": lambda v: "" if v else "is empty: pass a reference file made with make_reference "
                                                     "(launch argument 'reference')"}, **kwargs)
        self.settings = self._settings_from_parameters()

        reference_path = self.param("reference_path")
        expected_identity = self.param("expected_model_identity") or None
        expected_d = None
        model_path = self.param("model_path")
        if model_path:
            try:
                expected_identity, expected_d = read_model_identity(model_path)
            except (FileNotFoundError, ValueError, KeyError, TypeError) as exc:  # CheckpointError is a ValueError
                raise RuntimeError(f"grasp_node: cannot read model_path={model_path!r}: {exc}") from None
        try:
            self.reference = load_reference(reference_path, expected_identity, expected_d)
        except (FileNotFoundError, ReferenceMismatchError, ValueError) as exc:
            raise RuntimeError(f"grasp_node: reference_path={reference_path!r}: {exc}") from exc

        qos_out = reliable_qos(5)
        overrides = QoSOverridingOptions.with_default_policies()
        self.pub_pose = self.create_publisher(PoseStamped, "grasp/pose", qos_out, qos_overriding_options=overrides)
        self.pub_markers = self.create_publisher(MarkerArray, "grasp/markers", qos_out,
                                                 qos_overriding_options=overrides)
        self.pub_heatmap = self.create_publisher(Image, "grasp/heatmap", reliable_qos(2),
                                                 qos_overriding_options=overrides)
        self._previews = {}
        self.poses_published = 0
        self.frames = 0
        self.last_processing_s = float("nan")
        self.latencies = deque(maxlen=1000)   # s from a complete descriptor set to the published pose/markers
        # descriptor sets come from our own reliable publisher; a multi-megabyte 32FC<D> image is often lost
        # when read best effort (fragmented samples), so read them reliable with a shallow keep-last queue
        qos_in = reliable_qos(1)
        self._start_inputs(("descriptors/image", "descriptors/depth", "descriptors/camera_info"),
                           (Image, Image, CameraInfo), qos_in, "grasp_matching")
        self.create_subscription(Image, "descriptors/preview", self._on_preview, qos_in)
        self._stats_mark = (0, 0, time.monotonic())
        self._stats_timer = None
        self._set_stats_period(self.param("stats_period"))
        self._finish_startup()
        self.get_logger().info(
            f"grasp_node ready: reference {reference_path} ({len(self.reference)} references "
            f"{self.reference.names}, D={self.reference.descriptor_dim}, model {self.reference.model_identity}, "
            f"grasp at '{self.reference.names[self.reference.grasp_index]}')")

    # ------------------------------------------------------------------ parameters
    def _settings_from_parameters(self, changes: dict | None = None) -> GraspSettings:
        values = {name: self.param(name) for name in SETTINGS}
        values.update({k: v for k, v in (changes or {}).items() if k in values})
        return GraspSettings(**values)

    def _apply_change(self, changes: dict) -> None:
        """Validate the settings the change gives as a whole (e.g. min_depth < max_depth), then apply."""
        settings = self._settings_from_parameters(changes)   # ValueError refuses the whole change
        self.settings = settings
        if "stats_period" in changes:
            self._set_stats_period(changes["stats_period"])

    def _set_stats_period(self, period: float) -> None:
        if self._stats_timer is not None:
            self.destroy_timer(self._stats_timer)
            self._stats_timer = None
        if period > 0:
            self._stats_mark = (self.frames, self.poses_published, time.monotonic())
            self._stats_timer = self.create_timer(float(period), self._log_stats)

    # ------------------------------------------------------------------ callbacks (never raise)
    def _on_preview(self, msg: Image) -> None:
        try:
            previews = dict(self._previews)
            previews[stamp_seconds(msg.header.stamp)] = msg
            for stamp in sorted(previews)[:-5]:
                del previews[stamp]
            self._previews = previews  # swapped whole: the worker thread only reads
        except Exception as exc:  # noqa: BLE001
            self.log.warn("preview", f"preview dropped: {exc}")

    def _on_frame_set(self, desc: Image, depth: Image, info: CameraInfo) -> None:
        self.worker.submit((desc, depth, info, time.perf_counter()))

    def _log_stats(self) -> None:
        try:
            frames0, poses0, t0 = self._stats_mark
            now = time.monotonic()
            recent = list(self.latencies)[-(self.frames - frames0):] if self.frames > frames0 else []
            self._stats_mark = (self.frames, self.poses_published, now)
            if recent:
                ms = np.array(recent) * 1000.0
                self.get_logger().info(
                    f"stats: {len(recent)} frames in {now - t0:.1f} s, latency median {np.median(ms):.2f} ms, "
                    f"p95 {np.percentile(ms, 95):.2f} ms, poses published {self.poses_published - poses0}")
        except Exception as exc:  # noqa: BLE001
            self.log.error("stats", f"stats failed: {exc}")

    def _process(self, frame) -> None:
        desc_msg, depth_msg, info_msg, _arrival = frame
        t0 = time.perf_counter()
        what = (f"descriptors {desc_msg.encoding} {desc_msg.width}x{desc_msg.height} frame "
                f"'{desc_msg.header.frame_id}', depth {depth_msg.encoding} {depth_msg.width}x{depth_msg.height}, "
                f"camera_info {info_msg.width}x{info_msg.height}")
        if not desc_msg.header.frame_id.strip():
            # a pose in no frame cannot be transformed or used: never publish one (issue 12, item 4)
            self.log.warn("empty_frame_id", f"frame dropped: the descriptor image's header.frame_id is empty, a "
                                            f"pose needs the camera optical frame ({what})")
            return
        ref_d = self.reference.descriptor_dim
        try:
            dtype, channels = encoding_info(desc_msg.encoding)
        except ValueError as exc:
            self.log.warn("desc_encoding", f"frame dropped: {exc} ({what})")
            return
        if dtype != np.float32 or channels != ref_d:
            self.log.warn("desc_dim", f"frame dropped: descriptor image is {desc_msg.encoding}, the reference "
                                      f"needs 32FC{ref_d} (reference made with another model or D?) ({what})")
            return
        if (desc_msg.width, desc_msg.height) != (depth_msg.width, depth_msg.height):
            self.log.warn("size_mismatch", f"frame dropped: descriptor and depth sizes differ ({what})")
            return
        try:
            K = camera_info_for_image(info_msg, desc_msg.width, desc_msg.height)
        except ValueError as exc:
            self.log.warn("camera_info", f"frame dropped: {exc} ({what})")
            return
        try:
            descriptors = image_to_numpy(desc_msg)
            if descriptors.ndim == 2:
                descriptors = descriptors[:, :, None]
            descriptors = descriptors.transpose(2, 0, 1)
            depth = decode_depth(image_to_numpy(depth_msg), depth_msg.encoding)
        except ValueError as exc:
            self.log.warn("decode", f"frame dropped: {exc} ({what})")
            return
        if not np.any(depth > 0):
            self.log.warn("no_depth", f"no grasp: the depth image has no valid pixel ({what})")
            self._publish_heatmap(None, desc_msg)
            return
        est = estimate_grasp(descriptors, depth, K, self.reference, self.settings)
        self.frames += 1
        header = desc_msg.header
        if est.pose is None:
            self.log.warn("no_grasp", f"no grasp: {est.reason}")
        else:
            if est.reason:
                self.log.info("fallback", est.reason)
            msg = PoseStamped()
            msg.header = header
            p, q = est.pose.position, est.pose.quaternion
            msg.pose.position.x, msg.pose.position.y, msg.pose.position.z = (float(v) for v in p)
            (msg.pose.orientation.x, msg.pose.orientation.y, msg.pose.orientation.z,
             msg.pose.orientation.w) = (float(v) for v in q)
            self.pub_pose.publish(msg)
            self.poses_published += 1
        self.pub_markers.publish(self._markers(est, header))
        self.last_processing_s = time.perf_counter() - t0
        self.latencies.append(time.perf_counter() - _arrival)
        self._publish_heatmap(est, desc_msg)

    # ------------------------------------------------------------------ RViz aids
    def _publish_heatmap(self, est, desc_msg: Image) -> None:
        h, w = desc_msg.height, desc_msg.width
        heat = heatmap(est.distance_maps) if est is not None else np.zeros((h, w), np.float32)
        background = None
        preview = self._previews.get(stamp_seconds(desc_msg.header.stamp))
        if preview is not None and (preview.width, preview.height) == (w, h) and preview.encoding == "rgb8":
            try:
                background = image_to_numpy(preview)
            except ValueError:
                background = None
        self.pub_heatmap.publish(numpy_to_image(colorize_heatmap(heat, background), "rgb8", desc_msg.header))

    def _markers(self, est, header) -> MarkerArray:
        lifetime = float(self.param("marker_lifetime"))
        life = Duration(sec=int(lifetime), nanosec=int((lifetime % 1.0) * 1e9))
        markers = []

        def marker(mid, mtype):
            m = Marker()
            m.header = header
            m.ns = MARKER_NS
            m.id = mid
            m.type = mtype
            m.lifetime = life
            m.pose.orientation.w = 1.0
            return m

        refs = marker(3, Marker.SPHERE_LIST)
        refs.scale.x = refs.scale.y = refs.scale.z = 0.008
        for point, ok in zip(est.live_points, est.usable):
            if np.isfinite(point).all():
                refs.points.append(Point(x=float(point[0]), y=float(point[1]), z=float(point[2])))
                refs.colors.append(ColorRGBA(r=0.1, g=0.9, b=0.1, a=1.0) if ok else ColorRGBA(r=0.9, g=0.1, b=0.1,
                                                                                              a=1.0))
        if est.pose is None:
            if refs.points:
                markers.append(refs)
            text = marker(2, Marker.TEXT_VIEW_FACING)
            text.scale.z = 0.02
            text.color = ColorRGBA(r=1.0, g=0.3, b=0.3, a=1.0)
            text.text = "no grasp"
            text.pose.position.z = 0.3
            markers.append(text)
            return MarkerArray(markers=markers)
        p = est.pose.position
        approach = est.pose.rotation[:, 2]
        point = marker(0, Marker.SPHERE)
        point.pose.position = Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))
        point.scale.x = point.scale.y = point.scale.z = 0.015
        point.color = ColorRGBA(r=1.0, g=0.8, b=0.0, a=1.0)
        arrow = marker(1, Marker.ARROW)
        start = p - 0.1 * approach
        arrow.points = [Point(x=float(start[0]), y=float(start[1]), z=float(start[2])),
                        Point(x=float(p[0]), y=float(p[1]), z=float(p[2]))]
        arrow.scale.x, arrow.scale.y, arrow.scale.z = 0.006, 0.012, 0.02
        arrow.color = ColorRGBA(r=0.1, g=0.5, b=1.0, a=1.0)
        text = marker(2, Marker.TEXT_VIEW_FACING)
        text.pose.position = Point(x=float(start[0]), y=float(start[1]), z=float(start[2]))
        text.scale.z = 0.015
        text.color = ColorRGBA(r=1.0, g=1.0, b=1.0, a=1.0)
        text.text = f"{est.mode} conf {est.confidence:.2f}"
        markers += [point, arrow, text]
        if refs.points:
            markers.append(refs)
        return MarkerArray(markers=markers)


def main(args=None):
    # Alone in its process the grasp node runs torch only for tiny geometry ops (Kabsch on 3x3 batches), where a
    # 2-thread pool costs ~16 ms per call on a busy 2-core machine against 0.02 ms single-threaded (measured).
    # bringup shares the process with the descriptor network and leaves the setting alone.
    import torch

    torch.set_num_threads(1)
    run_node(GraspNode, args)


if __name__ == "__main__":
    main()
