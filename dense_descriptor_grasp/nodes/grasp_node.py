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
from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image
from std_msgs.msg import ColorRGBA
from visualization_msgs.msg import Marker, MarkerArray

from dense_descriptor_grasp.geometry.camera import decode_depth
from dense_descriptor_grasp.grasping.grasp_estimate import GraspSettings, estimate_grasp
from dense_descriptor_grasp.grasping.grasp_pose import APPROACH_MODES
from dense_descriptor_grasp.grasping.matching import METRICS, SUBPIXEL_METHODS, colorize_heatmap, heatmap
from dense_descriptor_grasp.grasping.reference import ReferenceMismatchError, load_reference
from dense_descriptor_grasp.image_msgs import camera_info_for_image, encoding_info, image_to_numpy, numpy_to_image

from .common import (ApproximateSync, LatestWorker, ParameterRules, ReasonLog, declare, odd_positive, reliable_qos,
                     run_node, stamp_seconds)

MARKER_NS = "grasp"
# settings parameter -> GraspSettings field
SETTINGS = ("metric", "max_distance", "max_ratio", "exclusion_radius", "subpixel", "depth_window",
            "foreground_snap_px", "depth_discontinuity", "min_depth", "max_depth", "approach", "normal_window",
            "use_object_pose", "inlier_threshold", "ransac_iterations", "min_inliers")


def read_model_identity(checkpoint_path: str) -> tuple[str, int]:
    """(identity, D) stored in a checkpoint, without building the network."""
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    ckpt = load_checkpoint(checkpoint_path)
    return str(ckpt.get("model_identity", "")), int(ckpt["model_config"]["descriptor_dim"])


class GraspNode(Node):
    def __init__(self, **kwargs):
        super().__init__("grasp_node", **kwargs)
        self._rules = ParameterRules(
            choices={"metric": METRICS, "subpixel": SUBPIXEL_METHODS, "approach": APPROACH_MODES},
            checks={"depth_window": odd_positive, "normal_window": odd_positive,
                    "reference_path": lambda v: "" if v else "is empty: pass a reference file made with "
                                                             "make_reference (launch argument 'reference')"},
        )
        # ONE set-parameters callback that validates the whole change and then applies it: rclpy runs these
        # callbacks newest first, so a separate "apply" callback would replace the settings before the rules
        # refused the change (issue 12, item 1)
        self.add_on_set_parameters_callback(self._on_set_parameters)
        declare(self, "reference_path", "", "Reference file (.npz/.json) from make_reference (launch argument "
                "'reference').", read_only=True)
        declare(self, "model_path", "", "Optional: the descriptor node's checkpoint; when set, a reference made "
                "with another model or D is refused at startup.", read_only=True)
        declare(self, "expected_model_identity", "", "Optional: refuse a reference whose model identity differs.",
                read_only=True)
        declare(self, "metric", "cosine", "Descriptor distance.", choices=METRICS)
        declare(self, "max_distance", 0.5, "Largest accepted descriptor distance of a match.",
                min_value=0.0, max_value=100.0)
        declare(self, "max_ratio", 0.95, "Ratio test: best / best-outside-exclusion_radius must not exceed this.",
                min_value=0.0, max_value=1.0)
        declare(self, "exclusion_radius", 6.0, "Pixels around the best match ignored by the ratio test.",
                min_value=0.0, max_value=1000.0)
        declare(self, "subpixel", "parabola", "Sub-pixel refinement of a match.", choices=SUBPIXEL_METHODS)
        declare(self, "depth_window", 5, "Odd window (px) for the median depth at a match.", min_value=1,
                max_value=51)
        declare(self, "foreground_snap_px", 8, "A match within this many pixels (px) of a depth discontinuity "
                "moves onto the near surface (the object, not the table behind it); 0 = off.", min_value=0,
                max_value=100)
        declare(self, "depth_discontinuity", 0.02, "Depth step (m) that separates the near surface from what is "
                "behind it, for foreground_snap_px.", min_value=1e-3, max_value=10.0)
        declare(self, "min_depth", 0.05, "Depth below this (m) is invalid.", min_value=0.0, max_value=100.0)
        declare(self, "max_depth", 5.0, "Depth above this (m) is invalid.", min_value=0.0, max_value=100.0)
        declare(self, "approach", "surface_normal", "Approach direction: local surface normal from depth (falls "
                "back to the camera ray) or the camera ray.", choices=APPROACH_MODES)
        declare(self, "normal_window", 9, "Odd window (px) for the surface normal.", min_value=3, max_value=51)
        declare(self, "use_object_pose", True, "With >= 3 references: 6-DoF grasp from the RANSAC object pose.")
        declare(self, "inlier_threshold", 0.01, "RANSAC inlier distance (m).", min_value=1e-4, max_value=1.0)
        declare(self, "ransac_iterations", 200, "RANSAC hypotheses (all triples when fewer).", min_value=1,
                max_value=100000)
        declare(self, "min_inliers", 4, "Inliers needed for a 6-DoF pose (capped at the number of references; "
                "3 inliers alone are only the minimal set itself).", min_value=3, max_value=1000)
        declare(self, "marker_lifetime", 0.5, "Lifetime of the RViz markers (s).", min_value=0.0, max_value=60.0)
        declare(self, "sync_slop", 0.02, "Approximate time sync: max stamp difference (s) (startup only).",
                min_value=0.0, max_value=1.0, read_only=True)
        declare(self, "sync_queue_size", 5, "Approximate time sync: messages kept per input (startup only).",
                min_value=1, max_value=100, read_only=True)
        declare(self, "missing_input_timeout", 2.0, "Warn when one input stays silent this long (s).",
                min_value=0.1, max_value=60.0)
        declare(self, "log_throttle", 2.0, "Seconds between repeated logs of the same problem.", min_value=0.0,
                max_value=60.0)
        declare(self, "stats_period", 0.0, "Log frame count, latency (median, p95) and poses every this many "
                "seconds; 0 = off.", min_value=0.0, max_value=3600.0)
        self.log = ReasonLog(self.get_logger(), self.get_parameter("log_throttle").value)
        self.settings = self._settings_from_parameters()

        reference_path = self.get_parameter("reference_path").value
        expected_identity = self.get_parameter("expected_model_identity").value or None
        expected_d = None
        model_path = self.get_parameter("model_path").value
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
        self.topics = ("descriptors/image", "descriptors/depth", "descriptors/camera_info")
        self.sync = ApproximateSync(3, self._on_frame_set, self.get_parameter("sync_queue_size").value,
                                    self.get_parameter("sync_slop").value)
        # descriptor sets come from our own reliable publisher; a multi-megabyte 32FC<D> image is often lost
        # when read best effort (fragmented samples), so read them reliable with a shallow keep-last queue
        qos_in = reliable_qos(1)
        self.create_subscription(Image, self.topics[0], lambda m: self._on_input(0, m), qos_in)
        self.create_subscription(Image, self.topics[1], lambda m: self._on_input(1, m), qos_in)
        self.create_subscription(CameraInfo, self.topics[2], lambda m: self._on_input(2, m), qos_in)
        self._previews = {}
        self.create_subscription(Image, "descriptors/preview", self._on_preview, qos_in)
        self.worker = LatestWorker(self._process, self._on_worker_error, "grasp_matching")
        self.create_timer(0.5, self._check_inputs)
        self.poses_published = 0
        self.frames = 0
        self.last_processing_s = float("nan")
        self.latencies = deque(maxlen=1000)   # s from a complete descriptor set to the published pose/markers
        self._stats_mark = (0, 0, time.monotonic())
        if self.get_parameter("stats_period").value > 0:
            self.create_timer(self.get_parameter("stats_period").value, self._log_stats)
        self.get_logger().info(
            f"grasp_node ready: reference {reference_path} ({len(self.reference)} references "
            f"{self.reference.names}, D={self.reference.descriptor_dim}, model {self.reference.model_identity}, "
            f"grasp at '{self.reference.names[self.reference.grasp_index]}')")

    # ------------------------------------------------------------------ parameters
    def _settings_from_parameters(self, changed=None) -> GraspSettings:
        values = {name: self.get_parameter(name).value for name in SETTINGS}
        for p in changed or []:
            if p.name in values:
                values[p.name] = p.value
        return GraspSettings(**values)

    def _on_set_parameters(self, params):
        """Validate the whole change (rules, then the settings it gives) and apply it only when all is accepted."""
        from rcl_interfaces.msg import SetParametersResult

        result = self._rules(params)
        if not result.successful or not hasattr(self, "settings"):  # refused, or still declaring
            return result
        try:
            settings = self._settings_from_parameters(params)
        except (ValueError, TypeError) as exc:
            return SetParametersResult(successful=False, reason=str(exc))
        self.settings = settings
        return result

    # ------------------------------------------------------------------ callbacks (never raise)
    def _on_input(self, index: int, msg) -> None:
        try:
            self.sync.add(index, msg)
        except Exception as exc:  # noqa: BLE001 - e.g. a malformed stamp
            self.log.warn("sync", f"message on {self.resolve_topic_name(self.topics[index])} dropped by the time "
                                  f"synchroniser: {type(exc).__name__}: {exc}")

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

    def _check_inputs(self) -> None:
        try:
            missing = self.sync.missing_inputs(self.get_parameter("missing_input_timeout").value)
            if missing:
                names = ", ".join(self.resolve_topic_name(self.topics[i]) for i in missing)
                self.log.warn("missing_input", f"no message on {names} while the other descriptor inputs arrive; "
                                               "no grasp is published")
        except Exception as exc:  # noqa: BLE001
            self.log.error("check_inputs", f"input check failed: {exc}")

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

    def _on_worker_error(self, exc: Exception) -> None:
        if not self.context.ok():  # shutting down: publishers are gone, nothing to report
            return
        self.log.error("unexpected", f"frame dropped after an unexpected error: {type(exc).__name__}: {exc}")

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
        lifetime = float(self.get_parameter("marker_lifetime").value)
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

    def destroy_node(self):
        worker = getattr(self, "worker", None)
        if worker is not None:
            worker.stop()
        return super().destroy_node()


def main(args=None):
    # Alone in its process the grasp node runs torch only for tiny geometry ops (Kabsch on 3x3 batches), where a
    # 2-thread pool costs ~16 ms per call on a busy 2-core machine against 0.02 ms single-threaded (measured).
    # bringup shares the process with the descriptor network and leaves the setting alone.
    import torch

    torch.set_num_threads(1)
    run_node(GraspNode, args)


if __name__ == "__main__":
    main()
