"""descriptor_node: runs the dense descriptor network on synchronised RGB-D frames.

Subscribes (reliable keep-last 2 by default: parameter camera_reliability, per-topic qos_overrides; approximate
time sync):
    camera/color/image_raw (rgb8 | bgr8 | rgba8 | bgra8), camera/depth/image_raw (16UC1 mm | 32FC1 m),
    camera/color/camera_info
Publishes (reliable; one consistent set, every header copied from the colour image):
    descriptors/image (32FC<D>), descriptors/preview (rgb8, only while someone subscribes), descriptors/depth (32FC1 m, NaN = none),
    descriptors/camera_info (K scaled to the descriptor image size)

Only the newest frame set is processed (a worker thread takes the latest; older sets are overwritten).
Bad frames (encoding, sizes, calibration) are dropped with a throttled log naming the reason.
"""
from __future__ import annotations

import time
from collections import deque

import numpy as np
from rclpy.qos_overriding_options import QoSOverridingOptions
from sensor_msgs.msg import CameraInfo, Image

from dense_descriptor_grasp.geometry.camera import resize_depth_nearest, scale_intrinsics
from dense_descriptor_grasp.grasping.preview import descriptor_preview
from dense_descriptor_grasp.image_msgs import (FrameSetError, decode_camera_set, descriptor_encoding,
                                               make_camera_info, numpy_to_image)

from .common import (CAMERA_RELIABILITY, SettingSpec, SyncedInputNode, camera_qos, declare, reliable_qos, run_node,
                     synced_input_specs)


PARAMETERS = (
    SettingSpec("model_path", "", "Checkpoint (.pt) of the descriptor network (launch argument 'model').",
                read_only=True),
    SettingSpec("device", "cpu", "Torch device, e.g. cpu or cuda:0.", read_only=True),
    SettingSpec("input_width", 0, "Width the colour image is resized to for the network; 0 = as received.", 0, 4096),
    SettingSpec("input_height", 0, "Height the colour image is resized to for the network; 0 = as received.", 0,
                4096),
    SettingSpec("output_width", 0, "Width of the published descriptor image (and depth); 0 = colour width.", 0,
                4096),
    SettingSpec("output_height", 0, "Height of the published descriptor image; 0 = colour height.", 0, 4096),
    SettingSpec("normalize", True, "L2-normalise descriptors (as the reference files expect by default)."),
    SettingSpec("foreground_threshold", 0.5, "Models with the foreground head (model.foreground): descriptors of "
                "pixels the model sees as the target with a probability below this are published as zero, so the "
                "grasp node searches the target only; 0 = publish every pixel's descriptor. Ignored by models "
                "without the head.", 0.0, 0.99),
    *synced_input_specs(0.05),
    SettingSpec("camera_reliability", "reliable", "Reliability of the three camera subscriptions (startup only). "
                "reliable matches the common drivers' default (realsense2_camera, orbbec, usb_cam) and gets "
                "full-size frames across processes; best_effort is needed for a driver publishing best effort "
                "(sensor-data profile), but loses frames from about 560 KB up across processes here. Per-topic "
                "qos_overrides.<topic>.subscription.* parameters win over it.", choices=tuple(CAMERA_RELIABILITY),
                read_only=True),
    SettingSpec("camera_queue_depth", 2, "Keep-last depth of the camera subscriptions: stale frames are replaced, "
                "never queued (startup only).", 1, 100, read_only=True),
    SettingSpec("depth_scale", 0.001, "Metres per unit of 16UC1 depth.", 1e-6, 1.0),
    SettingSpec("num_threads", 1, "torch.set_num_threads for this process at startup (read-only); 0 = torch default. "
                "1 is fastest here: torch's OpenMP pool spins against the executor threads "
                "(benchmarks.node_pipeline, 320x240: 6.7 fps with 1 thread, 3.8 fps with 2 on 2 cores).", 0, 256,
                read_only=True),
)


class DescriptorNode(SyncedInputNode):
    INPUTS_TEXT = "camera inputs"
    MISSING_CONSEQUENCE = "no descriptors are published until every input arrives"
    QOS_HINT = ("set descriptor_node's camera_reliability to match the camera driver (or the driver's QoS to "
                "reliable: best-effort full-size frames are lost across processes)")

    def __init__(self, **kwargs):
        super().__init__("descriptor_node", PARAMETERS, extra_checks={
            "model_path": lambda v: "" if v else "is empty: pass the trained checkpoint (launch argument 'model')",
        }, **kwargs)

        import torch

        from dense_descriptor_grasp.model.checkpoint import load_model

        if self.param("num_threads") > 0:
            torch.set_num_threads(int(self.param("num_threads")))
        model_path = self.param("model_path")
        self.device = self.param("device")
        try:
            self.model = load_model(model_path, device=self.device)
        except (FileNotFoundError, ValueError, RuntimeError) as exc:
            raise RuntimeError(f"descriptor_node: cannot load model_path={model_path!r}: {exc}") from exc
        self.descriptor_dim = int(self.model.descriptor_dim)
        self.model_identity = str(getattr(self.model, "identity", ""))
        declare(self, "model_identity", self.model_identity,
                "Identity of the loaded model (set by the node from the checkpoint; for reference checks).",
                read_only=True)

        qos_out = reliable_qos(2)
        overrides = QoSOverridingOptions.with_default_policies()
        self.pub_desc = self.create_publisher(Image, "descriptors/image", qos_out, qos_overriding_options=overrides)
        self.pub_preview = self.create_publisher(Image, "descriptors/preview", qos_out,
                                                 qos_overriding_options=overrides)
        self.pub_depth = self.create_publisher(Image, "descriptors/depth", qos_out, qos_overriding_options=overrides)
        self.pub_info = self.create_publisher(CameraInfo, "descriptors/camera_info", qos_out,
                                              qos_overriding_options=overrides)
        self.frames = 0
        self.last_inference_s = float("nan")
        self.previews = 0                        # preview images published (only while subscribed)
        self.frame_times = deque(maxlen=1000)   # monotonic time of each published descriptor set
        self.process_times = deque(maxlen=1000)  # (inference s, whole frame s) per published set
        self._start_inputs(("camera/color/image_raw", "camera/depth/image_raw", "camera/color/camera_info"),
                           (Image, Image, CameraInfo),
                           camera_qos(self.param("camera_reliability"), self.param("camera_queue_depth")),
                           "descriptor_inference")
        inputs = ", ".join(f"{self.resolve_topic_name(t)} ({s.qos_profile.reliability.name})"
                           for t, s in zip(self.topics, self.input_subscriptions))
        self._finish_startup()
        self.get_logger().info(
            f"descriptor_node ready: model {model_path} (identity {self.model_identity}, D={self.descriptor_dim}, "
            f"method {self.model.method}) on {self.device}; subscribing {inputs}")

    # ------------------------------------------------------------------ callbacks (never raise)
    def _process(self, frame) -> None:
        color_msg, depth_msg, info_msg = frame
        t_start = time.perf_counter()
        desc = (f"colour {color_msg.encoding} {color_msg.width}x{color_msg.height} "
                f"frame '{color_msg.header.frame_id}', depth {depth_msg.encoding} {depth_msg.width}x{depth_msg.height} "
                f"frame '{depth_msg.header.frame_id}', "
                f"camera_info {info_msg.width}x{info_msg.height}")
        if depth_msg.header.frame_id != color_msg.header.frame_id:
            self.log.warn("frame_id", f"depth frame_id differs from colour; assuming aligned depth ({desc})")
        try:
            rgb, depth, K = decode_camera_set(color_msg, depth_msg, info_msg, self.param("depth_scale"))
        except FrameSetError as exc:
            self.log.warn(exc.key, f"frame dropped: {exc} ({desc})")
            return
        h, w = rgb.shape[:2]
        out_h = self.get_parameter("output_height").value or h
        out_w = self.get_parameter("output_width").value or w
        in_h = self.get_parameter("input_height").value or h
        in_w = self.get_parameter("input_width").value or w
        t0 = time.perf_counter()
        try:
            descriptors = self.compute_descriptors(rgb, (in_h, in_w), (out_h, out_w), depth, K)
        except ValueError as exc:
            self.log.warn("model_input", f"frame dropped: the network refused the image: {exc} ({desc})")
            return
        self.last_inference_s = time.perf_counter() - t0
        if (out_h, out_w) != (h, w):
            depth = resize_depth_nearest(depth, (out_h, out_w))
            K = scale_intrinsics(K, (h, w), (out_h, out_w))
        header = color_msg.header
        depth_out = np.where(depth > 0, depth, np.nan).astype(np.float32)
        self.pub_desc.publish(numpy_to_image(np.ascontiguousarray(descriptors.transpose(1, 2, 0)),
                                             descriptor_encoding(self.descriptor_dim), header))
        if self.pub_preview.get_subscription_count() > 0:   # lazy: the preview is for RViz; nobody, no cost
            self.pub_preview.publish(numpy_to_image(descriptor_preview(descriptors), "rgb8", header))
            self.previews += 1
        self.pub_depth.publish(numpy_to_image(depth_out, "32FC1", header))
        self.pub_info.publish(make_camera_info(K, out_w, out_h, header))
        self.frames += 1
        self.frame_times.append(time.monotonic())
        self.process_times.append((self.last_inference_s, time.perf_counter() - t_start))

    def compute_descriptors(self, rgb: np.ndarray, input_size, output_size, depth=None, K=None) -> np.ndarray:
        """(H, W, 3) uint8 RGB (+ (H, W) depth in metres and K, read by depth-input models) -> (D, H_out, W_out)
        float32 descriptors (``model.inference.descriptor_image``)."""
        from dense_descriptor_grasp.model.inference import descriptor_image  # torch: imported with the model

        return descriptor_image(self.model, rgb, input_size, output_size, device=self.device,
                                normalize=bool(self.get_parameter("normalize").value), depth=depth, K=K,
                                foreground_threshold=float(self.get_parameter("foreground_threshold").value))


def main(args=None):
    run_node(DescriptorNode, args)


if __name__ == "__main__":
    main()
