"""capture_dataset over real rclpy (Fast DDS): synced colour + depth + camera_info in, keyframes on the ~/capture
Trigger service or by interval, written into a capture folder that read_capture_folder reads back; bad messages
dropped with a reason, resuming, refusals."""
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")
pytest.importorskip("std_srvs")

from nodes_harness import TIMEOUT_S, ros_graph, wait_until  # noqa: E402

H, W = 48, 64
K = np.array([[60.0, 0.0, 31.5], [0.0, 61.0, 23.5], [0.0, 0.0, 1.0]])
SERVICE = "/capture_dataset/capture"


@pytest.fixture
def graph():
    with ros_graph(offset=41) as g:
        yield g


class Camera:
    """Publishes synced frame sets (bgr8 colour, 16UC1 mm depth, camera_info) at ``rate`` Hz on a thread; each
    set differs and is remembered by stamp, so a kept frame can be compared with what was sent."""

    def __init__(self, g, rate=15.0, bad=None):
        from sensor_msgs.msg import CameraInfo, Image

        self.g = g
        self.pub = {"color": g.node.create_publisher(Image, "camera/color/image_raw", 5),
                    "depth": g.node.create_publisher(Image, "camera/depth/image_raw", 5),
                    "info": g.node.create_publisher(CameraInfo, "camera/color/camera_info", 5)}
        self.period = 1.0 / rate
        self.bad = bad
        self.sent = {}
        self.count = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        from std_msgs.msg import Header

        from dense_descriptor_grasp.image_msgs import make_camera_info, numpy_to_image

        rng = np.random.default_rng(0)
        while not self._stop.is_set():
            header = Header(frame_id="camera_color_optical_frame", stamp=self.g.node.get_clock().now().to_msg())
            rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
            depth_mm = rng.integers(300, 2000, (H, W)).astype(np.uint16)
            depth_mm[:4] = 0                                          # no depth
            color = numpy_to_image(np.ascontiguousarray(rgb[:, :, ::-1]), "bgr8", header)
            depth = numpy_to_image(depth_mm, "16UC1", header)
            info = make_camera_info(K, W, H, header)
            if self.bad is not None:
                color, depth, info = self.bad(color, depth, info)
            self.sent[round(header.stamp.sec + 1e-9 * header.stamp.nanosec, 6)] = (rgb, depth_mm)
            self.pub["depth"].publish(depth)
            self.pub["info"].publish(info)
            self.pub["color"].publish(color)
            self.count += 1
            time.sleep(self.period)

    def stop(self):
        self._stop.set()
        self._thread.join(2.0)


def trigger(g):
    from std_srvs.srv import Trigger

    client = g.node.create_client(Trigger, SERVICE)
    assert client.wait_for_service(timeout_sec=TIMEOUT_S), f"{SERVICE} not offered"
    future = client.call_async(Trigger.Request())
    assert wait_until(future.done), "no answer from the service"
    g.node.destroy_client(client)
    return future.result()


def check_frames_match_sent(folder, camera):
    from dense_descriptor_grasp.capture.importer import read_capture_folder

    frames = read_capture_folder(folder)
    for f in frames:
        rgb, depth_mm = camera.sent[round(f.stamp, 6)]
        assert np.array_equal(f.rgb, rgb), f.name                 # bgr8 became RGB
        assert np.allclose(f.K, K) and f.depth.shape == (H, W)
        assert np.allclose(f.depth, depth_mm.astype(np.float32) * 0.001, atol=1e-6), f.name
        assert np.all(f.depth[:4] == 0)
        assert f.T_world_camera is None                            # no TF configured
    return frames


def test_trigger_keeps_the_next_frame_sets_and_stops_at_max_frames(graph, tmp_path):
    from dense_descriptor_grasp.nodes.capture_node import CaptureNode

    folder = tmp_path / "capture"
    node = graph.add(CaptureNode, {"output_dir": str(folder), "keyframe_mode": "request", "max_frames": 2,
                                   "log_throttle": 0.0})
    camera = Camera(graph)
    try:
        assert wait_until(lambda: camera.count >= 10 and node.sync.last_arrival[0] is not None)
        time.sleep(0.3)
        assert len(node.writer) == 0                               # request mode: nothing kept unasked
        for n in (1, 2):
            response = trigger(graph)
            assert response.success, response.message
            assert "will be kept" in response.message
            assert wait_until(lambda: len(node.writer) == n), f"frame {n} not written"
        time.sleep(0.5)
        assert len(node.writer) == 2
        response = trigger(graph)
        assert not response.success and "max_frames reached" in response.message
    finally:
        camera.stop()
    frames = check_frames_match_sent(folder, camera)
    assert [f.name for f in frames] == ["000000", "000001"]
    assert graph.wait_log("capture_dataset", "kept 2 / 2 frames (000001: request)")
    assert graph.wait_log("capture_dataset", "capture complete: 2 / 2 frames kept")


def test_interval_mode_then_resume(graph, tmp_path):
    from dense_descriptor_grasp.capture.importer import read_capture_folder
    from dense_descriptor_grasp.nodes.capture_node import CaptureNode

    folder = tmp_path / "capture"
    node = graph.add(CaptureNode, {"output_dir": str(folder), "interval": 0.25, "max_frames": 3})
    camera = Camera(graph)
    try:
        assert wait_until(lambda: len(node.writer) == 3)
        n_sent = camera.count
        assert wait_until(lambda: camera.count >= n_sent + 6)
        assert len(node.writer) == 3                               # stopped keeping at max_frames
        graph.remove(node)
        # a new node on the same folder continues after its frames
        # (another node name: rclpy's /rosout publisher of a name goes with the first node of that name)
        node = graph.add(CaptureNode, {"output_dir": str(folder), "interval": 0.25, "max_frames": 5},
                         remap={"__node": "capture_resumed"})
        assert node.writer.resumed == 3
        assert wait_until(lambda: len(node.writer) == 5)
    finally:
        camera.stop()
    frames = check_frames_match_sent(folder, camera)
    assert [f.name for f in frames] == [f"{i:06d}" for i in range(5)]
    stamps = [f.stamp for f in frames]
    assert all(b - a >= 0.25 - 1e-6 for a, b in zip(stamps, stamps[1:])), stamps
    assert graph.wait_log("capture_resumed", "resuming a capture of 3 frames")
    assert len(read_capture_folder(folder)) == 5


def _truncated(color, depth, info):
    color.data = bytes(color.data)[: len(color.data) // 2]
    return color, depth, info


def _mono(color, depth, info):
    color.encoding = "mono8"
    return color, depth, info


def _uncalibrated(color, depth, info):
    info.k = [0.0] * 9
    return color, depth, info


def _small_depth(color, depth, info):
    from dense_descriptor_grasp.image_msgs import numpy_to_image

    return color, numpy_to_image(np.zeros((H // 2, W // 2), np.uint16), "16UC1", depth.header), info


@pytest.mark.parametrize("bad,reason", [(_truncated, "frame set dropped"), (_mono, "colour encoding 'mono8'"),
                                        (_uncalibrated, "uncalibrated"), (_small_depth, "sizes differ")])
def test_bad_messages_are_dropped_with_a_reason(graph, tmp_path, bad, reason):
    from dense_descriptor_grasp.nodes.capture_node import CaptureNode

    folder = tmp_path / "capture"
    node = graph.add(CaptureNode, {"output_dir": str(folder), "interval": 0.1, "log_throttle": 0.0})
    camera = Camera(graph, bad=bad)
    try:
        assert graph.wait_log("capture_dataset", reason), graph.log_text("capture_dataset")
        assert len(node.writer) == 0
        assert trigger(graph).success                              # the node still answers
    finally:
        camera.stop()
    camera = Camera(graph)                                         # good frames afterwards are kept
    try:
        assert wait_until(lambda: len(node.writer) >= 1)
    finally:
        camera.stop()
    check_frames_match_sent(folder, camera)


def test_another_cameras_folder_is_refused_naming_the_file(graph, tmp_path):
    from dense_descriptor_grasp.capture.frames import Frame
    from dense_descriptor_grasp.capture.keyframes import CaptureFolderWriter
    from dense_descriptor_grasp.nodes.capture_node import CaptureNode

    folder = tmp_path / "capture"
    K2 = K.copy()
    K2[0, 0] = 80.0
    CaptureFolderWriter(folder).append(Frame(rgb=np.zeros((H, W, 3), np.uint8), depth=np.ones((H, W), np.float32),
                                             K=K2))
    node = graph.add(CaptureNode, {"output_dir": str(folder), "keyframe_mode": "request", "log_throttle": 0.0})
    camera = Camera(graph)
    try:
        assert trigger(graph).success
        assert graph.wait_log("capture_dataset", "camera_intrinsic.json"), graph.log_text("capture_dataset")
        assert "one camera per capture folder" in graph.log_text("capture_dataset")
        response = trigger(graph)                                  # the service says so too
        assert not response.success and "camera_intrinsic.json" in response.message, response.message
    finally:
        camera.stop()
    assert len(node.writer) == 1


def test_startup_refusals(graph, tmp_path):
    from rclpy.exceptions import InvalidParameterValueException

    from dense_descriptor_grasp.nodes.capture_node import CaptureNode

    with pytest.raises(InvalidParameterValueException, match="output_dir"):
        graph.add(CaptureNode, {"output_dir": ""})
    (tmp_path / "file").write_text("x")
    with pytest.raises(RuntimeError, match="cannot use output_dir=.*not a folder"):
        graph.add(CaptureNode, {"output_dir": str(tmp_path / "file")})
    try:
        import tf2_msgs  # noqa: F401
    except ImportError:
        with pytest.raises(RuntimeError, match="world_frame='base_link'.*tf2_msgs is not installed"):
            graph.add(CaptureNode, {"output_dir": str(tmp_path / "c"), "world_frame": "base_link"})
