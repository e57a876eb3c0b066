"""The node helpers: newest-frame worker (no growing queue), sync shell, parameter rules, per-reason throttling."""
import threading
import time
from types import SimpleNamespace

import pytest

pytest.importorskip("rclpy")

from dense_descriptor_grasp.nodes.common import ApproximateSync, LatestWorker, ReasonLog, SettingSpec  # noqa: E402


def test_worker_processes_only_the_newest_item_when_slow():
    done, errors = [], []
    gate = threading.Event()

    def process(item):
        gate.wait(5)
        done.append(item)
        if item == "boom":
            raise RuntimeError("bad frame")

    worker = LatestWorker(process, errors.append)
    worker.submit(0)
    time.sleep(0.1)                       # 0 is being processed (blocked on the gate)
    for i in range(1, 10):
        worker.submit(i)                  # 1..8 are overwritten by their successors
    gate.set()
    deadline = time.monotonic() + 5
    while len(done) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done == [0, 9] and worker.dropped == 8
    worker.submit("boom")
    deadline = time.monotonic() + 5
    while not errors and time.monotonic() < deadline:
        time.sleep(0.01)
    assert isinstance(errors[0], RuntimeError)
    worker.submit(10)                     # the thread survived the exception
    deadline = time.monotonic() + 5
    while done[-1] != 10 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert done[-1] == 10
    worker.stop()


def msg(t):
    return SimpleNamespace(header=SimpleNamespace(stamp=SimpleNamespace(sec=int(t), nanosec=int(round((t % 1) * 1e9)))))


def test_sync_shell_matches_names_missing_inputs_and_recovers_from_a_clock_jump():
    sets = []
    sync = ApproximateSync(3, lambda *m: sets.append(m), queue_size=3, slop=0.05)
    sync.add(0, msg(10.0))
    sync.add(1, msg(10.01))
    assert sync.missing_inputs(5.0) == [2] and not sets
    sync.add(2, msg(10.02))
    assert len(sets) == 1 and sync.missing_inputs(5.0) == []
    for i in range(3):                    # the sim restarted: stamps jump back by 10 s
        sync.add(i, msg(0.5))
    assert len(sets) == 2


def test_setting_spec_checks_and_throttle():
    """The per-value rules of the nodes' set-parameters callback (PipelineNode) and of GraspSettings."""
    metric = SettingSpec("metric", "cosine", "Distance.", choices=("l2", "cosine"))
    window = SettingSpec("w", 5, "Window.", 1, 51, odd=True)
    ratio = SettingSpec("r", 0.5, "Ratio.", 0.0, 1.0)
    assert metric.check("l2") == "" and window.check(5) == "" and ratio.check(1) == ""
    assert "must be one of ['l2', 'cosine'], got 'hamming'" in metric.check("hamming")
    assert "odd" in window.check(4) and "[1, 51]" in window.check(53)
    assert ratio.check("x") == "r must be double, got string 'x'" and "finite" in ratio.check(float("nan"))
    assert window.check(5.0) == "w must be integer, got double 5.0" and window.check(True).startswith("w must be")
    lines = []
    log = ReasonLog(SimpleNamespace(warning=lines.append, error=lines.append, info=lines.append), period=60.0)
    for _ in range(3):
        log.warn("a", "first problem")
        log.warn("b", "second problem")
    assert lines == ["first problem", "second problem"]


def test_descriptor_node_resize_keeps_rays_and_valid_depth():
    import numpy as np

    from dense_descriptor_grasp.geometry.camera import backproject
    from dense_descriptor_grasp.image_msgs import color_to_rgb
    from dense_descriptor_grasp.geometry.camera import resize_depth_nearest, scale_intrinsics

    K = np.array([[100.0, 0, 39.5], [0, 100.0, 31.5], [0, 0, 1]])
    K2 = scale_intrinsics(K, (64, 80), (32, 40))
    uv = np.array([[10.0, 20.0], [79.0, 63.0], [0.0, 0.0]])
    uv2 = (uv + 0.5) * 0.5 - 0.5                      # the same points in the half-size image
    z = np.ones(3)
    np.testing.assert_allclose(backproject(uv, z, K), backproject(uv2, z, K2), atol=1e-12)
    depth = np.zeros((64, 80), np.float32)
    depth[::2, ::2] = 1.0
    small = resize_depth_nearest(depth, (32, 40))
    assert small.shape == (32, 40) and set(np.unique(small)) <= {0.0, 1.0}   # never mixes valid and invalid
    bgr = np.zeros((2, 2, 3), np.uint8)
    bgr[..., 0] = 255
    assert color_to_rgb(bgr, "bgr8")[0, 0].tolist() == [0, 0, 255]
    assert color_to_rgb(np.dstack([bgr, bgr[..., :1]]), "rgba8").shape == (2, 2, 3)


def test_publishers_text_names_a_publisher_whose_node_is_not_discovered_yet():
    """rmw reports _NODE_NAME_UNKNOWN_ for an endpoint whose participant DDS has not announced yet (seen under CI
    load): the log says so in words instead of printing the placeholder as a node name."""
    from rclpy.qos import QoSProfile, ReliabilityPolicy

    from dense_descriptor_grasp.nodes.common import SyncedInputNode

    qos = QoSProfile(depth=5, reliability=ReliabilityPolicy.BEST_EFFORT)
    infos = [SimpleNamespace(node_name="_NODE_NAME_UNKNOWN_", node_namespace="_NODE_NAMESPACE_UNKNOWN_",
                             qos_profile=qos),
             SimpleNamespace(node_name="driver", node_namespace="/camera", qos_profile=qos)]
    fake = SimpleNamespace(get_publishers_info_by_topic=lambda topic: infos)
    text = SyncedInputNode.publishers_text(fake, "/camera/color/image_raw")
    assert text.startswith("(a node not discovered yet) (BEST_EFFORT") and "/camera/driver (BEST_EFFORT" in text
    assert "UNKNOWN" not in text
    assert SyncedInputNode.publishers_text(SimpleNamespace(get_publishers_info_by_topic=lambda t: []), "/x") == "none"
