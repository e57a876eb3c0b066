"""Fuzz of the two processing nodes in their own processes over real Fast DDS (issue 12, "done means").

descriptor_node and grasp_node run as separate processes (``python -m dense_descriptor_grasp.nodes.<node>``), the
grasp node reading the descriptor node's output as under the launch file. This test publishes, interleaved with
valid sets:

- to the camera topics: wrong / empty / unknown encodings, truncated data, a step shorter than a row, absurd
  sizes with tiny data, big-endian depth, all-NaN / inf / zero / negative depth, colour and depth of different
  sizes, camera_info with zero / NaN / absurd intrinsics or another size;
- to the descriptor topics directly: the same kinds of faults for 32FC<D> sets (other D, NaN / inf descriptors,
  truncated data, no valid depth, absurd camera_info, empty frame_id).

Asserted: both processes are alive at the end and printed no traceback; no grasp pose carries the stamp of a
malformed set (in particular none without valid depth); after the bad sets, valid camera frames still give
descriptor sets and heatmaps, and valid descriptor sets still give poses.
"""
import os
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

pytest.importorskip("rclpy")

from nodes_harness import D, RosGraph, isolate_ros_graph, restore_ros_env, wait_until, write_tiny_checkpoint  # noqa: E402

H, W = 64, 80
K = np.array([[70.0, 0, (W - 1) / 2], [0, 70.0, (H - 1) / 2], [0, 0, 1]])
MATCH_UV = (40, 32)
FUZZ_SECONDS = 8.0


def image(encoding, array=None, *, height=H, width=W, step=None, data=None, bigendian=0, header=None):
    from sensor_msgs.msg import Image

    msg = Image(header=header, height=height, width=width, encoding=encoding, is_bigendian=bigendian)
    if array is not None:
        array = np.ascontiguousarray(array)
        msg.step = step if step is not None else int(array.strides[0])
        msg.data = array.tobytes() if data is None else data
    else:
        msg.step = step if step is not None else 0
        msg.data = data if data is not None else b""
    return msg


def camera_info(header, k=K, width=W, height=H, d=()):
    from sensor_msgs.msg import CameraInfo

    k = np.asarray(k, dtype=np.float64)
    p = np.zeros((3, 4))
    p[:, :3] = k
    return CameraInfo(header=header, width=width, height=height, distortion_model="plumb_bob",
                      d=[float(x) for x in d] or [0.0] * 5, k=[float(x) for x in k.ravel()],
                      r=[1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0], p=[float(x) for x in p.ravel()])


def good_camera(header, rng):
    rgb = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    return image("rgb8", rgb, header=header), image("32FC1", np.full((H, W), 0.5, np.float32), header=header), \
        camera_info(header)


def bad_camera(case, header, rng):
    """(colour, depth, info) with one fault; all of them must give no pose."""
    color, depth, info = good_camera(header, rng)
    f32 = np.full((H, W), 0.5, np.float32)
    if case == "colour mono16":
        color = image("mono16", np.zeros((H, W), np.uint16), header=header)
    elif case == "colour unknown encoding":
        color = image("yuv422_yuy2", np.zeros((H, W * 2), np.uint8), header=header)
    elif case == "colour empty encoding":
        color.encoding = ""
    elif case == "colour truncated":
        color.data = bytes(color.data[: len(color.data) // 3])
    elif case == "colour step too short":
        color.step = W
    elif case == "colour absurd size":
        color = image("rgb8", np.zeros((2, 2, 3), np.uint8), height=100000, width=100000, header=header)
    elif case == "colour zero size":
        color = image("rgb8", np.zeros((0, 0, 3), np.uint8), height=0, width=0, step=0, header=header)
    elif case == "depth nan":
        depth = image("32FC1", np.full((H, W), np.nan, np.float32), header=header)
    elif case == "depth inf":
        depth = image("32FC1", np.full((H, W), np.inf, np.float32), header=header)
    elif case == "depth negative":
        depth = image("32FC1", -f32, header=header)
    elif case == "depth zero 16UC1":
        depth = image("16UC1", np.zeros((H, W), np.uint16), header=header)
    elif case == "depth 8UC1":
        depth = image("8UC1", np.zeros((H, W), np.uint8), header=header)
    elif case == "depth odd bytes":
        depth = image("16UC1", np.zeros((H, W), np.uint16), data=b"\x01" * (H * W * 2 - 1), header=header)
    elif case == "depth big-endian garbage":
        depth = image("32FC1", f32, bigendian=1, header=header)        # 0.5 read big-endian: tiny denormals
    elif case == "depth other size":
        depth = image("32FC1", np.full((H // 2, W // 2), 0.5, np.float32), height=H // 2, width=W // 2,
                      header=header)
    elif case == "info zero K":
        info = camera_info(header, k=np.zeros((3, 3)))
    elif case == "info nan K":
        info = camera_info(header, k=np.full((3, 3), np.nan))
    elif case == "info absurd K":
        info = camera_info(header, k=np.array([[1e-300, 0, -1e308], [0, 1e-300, 1e308], [0, 0, 1]]))
    elif case == "info other size":
        info = camera_info(header, width=W * 4, height=H * 4)
    elif case == "info huge distortion":
        info = camera_info(header, d=np.full(1000, 1e30))
    else:
        raise AssertionError(case)
    return color, depth, info


CAMERA_CASES = ("colour mono16", "colour unknown encoding", "colour empty encoding", "colour truncated",
                "colour step too short", "colour absurd size", "colour zero size", "depth nan", "depth inf",
                "depth negative", "depth zero 16UC1", "depth 8UC1", "depth odd bytes", "depth big-endian garbage",
                "depth other size", "info zero K", "info nan K", "info absurd K", "info other size",
                "info huge distortion")


def good_descriptors(header):
    from dense_descriptor_grasp.image_msgs import descriptor_encoding

    desc = np.zeros((H, W, D), np.float32)
    desc[:, :, 1] = 1.0
    desc[MATCH_UV[1], MATCH_UV[0]] = np.eye(D, dtype=np.float32)[0]
    return image(descriptor_encoding(D), desc, header=header), \
        image("32FC1", np.full((H, W), 0.5, np.float32), header=header), camera_info(header)


def bad_descriptors(case, header):
    from dense_descriptor_grasp.image_msgs import descriptor_encoding

    desc, depth, info = good_descriptors(header)
    if case == "other D":
        desc = image(descriptor_encoding(4), np.zeros((H, W, 4), np.float32), header=header)
    elif case == "nan descriptors":
        desc = image(descriptor_encoding(D), np.full((H, W, D), np.nan, np.float32), header=header)
    elif case == "inf descriptors":
        desc = image(descriptor_encoding(D), np.full((H, W, D), np.inf, np.float32), header=header)
    elif case == "truncated descriptors":
        desc.data = bytes(desc.data[:1000])
    elif case == "descriptor rgb8":
        desc = image("rgb8", np.zeros((H, W, 3), np.uint8), header=header)
    elif case == "no valid depth":
        depth = image("32FC1", np.full((H, W), np.nan, np.float32), header=header)
    elif case == "depth out of range":
        depth = image("32FC1", np.full((H, W), 500.0, np.float32), header=header)
    elif case == "zero depth 16UC1":
        depth = image("16UC1", np.zeros((H, W), np.uint16), header=header)
    elif case == "depth other size":
        depth = image("32FC1", np.full((H, W * 2), 0.5, np.float32), width=W * 2, header=header)
    elif case == "info absurd K":
        info = camera_info(header, k=np.array([[1e-300, 0, -1e308], [0, 1e-300, 1e308], [0, 0, 1]]))
    elif case == "info other size":
        info = camera_info(header, width=W // 2, height=H // 2)
    elif case == "info nan K":
        info = camera_info(header, k=np.full((3, 3), np.nan))
    elif case == "empty frame_id":
        for msg in (desc, depth, info):
            msg.header.frame_id = ""
    else:
        raise AssertionError(case)
    return desc, depth, info


DESCRIPTOR_CASES = ("other D", "nan descriptors", "inf descriptors", "truncated descriptors", "descriptor rgb8",
                    "no valid depth", "depth out of range", "zero depth 16UC1", "depth other size", "info absurd K",
                    "info other size", "info nan K", "empty frame_id")


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory):
    """descriptor_node and grasp_node in their own processes; a probe graph in this one."""
    from dense_descriptor_grasp.grasping.reference import Reference, save_reference

    folder = tmp_path_factory.mktemp("nodes_fuzz")
    ckpt = write_tiny_checkpoint(folder / "tiny.pt")
    ref = save_reference(folder / "ref.npz", Reference("x", np.eye(D)[:1], [list(MATCH_UV)], [[0.0, 0.0, 0.5]]))
    previous = isolate_ros_graph(offset=31)
    quick = ["-p", "log_throttle:=0.0", "-p", "missing_input_timeout:=0.5"]
    commands = {
        "descriptor_node": [sys.executable, "-m", "dense_descriptor_grasp.nodes.descriptor_node", "--ros-args",
                            "-p", f"model_path:={ckpt}", "-p", "num_threads:=1", *quick],
        "grasp_node": [sys.executable, "-m", "dense_descriptor_grasp.nodes.grasp_node", "--ros-args",
                       "-p", f"reference_path:={ref}", *quick],
    }
    logs = {name: open(folder / f"{name}.log", "w+") for name in commands}
    processes = {name: subprocess.Popen(cmd, env=dict(os.environ), stdout=logs[name], stderr=subprocess.STDOUT)
                 for name, cmd in commands.items()}
    g = RosGraph()
    g.processes, g.log_files = processes, logs

    def log_text(name):
        logs[name].flush()
        return (folder / f"{name}.log").read_text(errors="replace")

    g.process_log = log_text
    try:
        ready = wait_until(lambda: all(f"{n} ready" in log_text(n) for n in commands)
                           or any(p.poll() is not None for p in processes.values()), 60.0)
        assert ready and all(p.poll() is None for p in processes.values()), \
            {n: log_text(n)[-2000:] for n in commands}
        yield g
    finally:
        g.close()
        for p in processes.values():
            if p.poll() is None:
                p.terminate()
        for p in processes.values():
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        for f in logs.values():
            f.close()
        restore_ros_env(previous)


def test_fuzzed_inputs_never_kill_a_node_nor_give_a_pose(pipeline):
    from builtin_interfaces.msg import Time
    from geometry_msgs.msg import PoseStamped
    from sensor_msgs.msg import CameraInfo, Image
    from std_msgs.msg import Header

    from dense_descriptor_grasp.nodes.common import camera_qos, reliable_qos

    g = pipeline
    qos = reliable_qos(5)
    cam = [g.node.create_publisher(Image, "camera/color/image_raw", camera_qos(depth=5)),
           g.node.create_publisher(Image, "camera/depth/image_raw", camera_qos(depth=5)),
           g.node.create_publisher(CameraInfo, "camera/color/camera_info", camera_qos(depth=5))]
    desc = [g.node.create_publisher(Image, "descriptors/image", qos),
            g.node.create_publisher(Image, "descriptors/depth", qos),
            g.node.create_publisher(CameraInfo, "descriptors/camera_info", qos)]
    poses, heatmaps, sets = [], [], []
    lock = threading.Lock()

    def keep(into):
        def on_msg(msg):
            with lock:
                into.append((msg.header.stamp.sec, msg.header.stamp.nanosec))
        return on_msg

    g.node.create_subscription(PoseStamped, "grasp/pose", keep(poses), reliable_qos(50))
    g.node.create_subscription(Image, "grasp/heatmap", keep(heatmaps), reliable_qos(50))
    g.node.create_subscription(Image, "descriptors/image", keep(sets), reliable_qos(50))
    assert wait_until(lambda: all(p.get_subscription_count() > 0 for p in cam + desc), 20.0), "nodes not discovered"

    rng = np.random.default_rng(12)
    bad_stamps, good_desc_stamps = set(), set()
    counts = {"camera bad": 0, "camera good": 0, "descriptor bad": 0, "descriptor good": 0}

    def stamp_at(t):
        return Time(sec=int(t), nanosec=int(round((t % 1.0) * 1e9)) % 1_000_000_000)

    def send(publishers, messages):
        for pub, msg in zip(publishers, messages):
            pub.publish(msg)

    def one_round(fuzz: bool):
        now = g.node.get_clock().now().nanoseconds * 1e-9
        # camera set at `now`, descriptor set 50 ms later: never within either node's sync slop of each other
        cam_header = Header(frame_id="camera_color_optical_frame", stamp=stamp_at(now))
        desc_header = Header(frame_id="camera_color_optical_frame", stamp=stamp_at(now + 0.05))
        key_cam = (cam_header.stamp.sec, cam_header.stamp.nanosec)
        key_desc = (desc_header.stamp.sec, desc_header.stamp.nanosec)
        if fuzz and rng.random() < 0.7:
            send(cam, bad_camera(CAMERA_CASES[rng.integers(len(CAMERA_CASES))], cam_header, rng))
            bad_stamps.add(key_cam)
            counts["camera bad"] += 1
        else:
            send(cam, good_camera(cam_header, rng))
            counts["camera good"] += 1
        if fuzz and rng.random() < 0.7:
            send(desc, bad_descriptors(DESCRIPTOR_CASES[rng.integers(len(DESCRIPTOR_CASES))], desc_header))
            bad_stamps.add(key_desc)
            counts["descriptor bad"] += 1
        else:
            send(desc, good_descriptors(desc_header))
            good_desc_stamps.add(key_desc)
            counts["descriptor good"] += 1
        time.sleep(0.1)

    end = time.monotonic() + FUZZ_SECONDS
    while time.monotonic() < end:
        one_round(fuzz=True)
    # every case at least once (the random draw may miss some): the bad ones in order
    for case in CAMERA_CASES:
        now = g.node.get_clock().now().nanoseconds * 1e-9
        header = Header(frame_id="camera_color_optical_frame", stamp=stamp_at(now))
        send(cam, bad_camera(case, header, rng))
        bad_stamps.add((header.stamp.sec, header.stamp.nanosec))
        time.sleep(0.05)
    for case in DESCRIPTOR_CASES:
        now = g.node.get_clock().now().nanoseconds * 1e-9
        header = Header(frame_id="camera_color_optical_frame", stamp=stamp_at(now))
        send(desc, bad_descriptors(case, header))
        bad_stamps.add((header.stamp.sec, header.stamp.nanosec))
        time.sleep(0.05)

    with lock:
        n_poses, n_heat, n_sets = len(poses), len(heatmaps), len(sets)
    # valid sets after the bad ones still give output
    after = wait_until(lambda: (one_round(fuzz=False) or True) and len(poses) > n_poses and len(heatmaps) > n_heat
                       and len(sets) > n_sets, 20.0, period=0.0)
    time.sleep(0.5)
    alive = {name: p.poll() is None for name, p in g.processes.items()}
    logs = {name: g.process_log(name) for name in g.processes}
    assert all(alive.values()), (alive, {n: t[-3000:] for n, t in logs.items()})
    for name, text in logs.items():
        assert "Traceback" not in text and "unexpected error" not in text, f"{name}:\n{text[-3000:]}"
    with lock:
        published = set(poses)
    leaked = published & bad_stamps
    assert not leaked, f"{len(leaked)} pose(s) for malformed sets; counts {counts}"
    assert after, (f"no output after the bad sets: poses {len(poses)} (before {n_poses}), heatmaps "
                   f"{len(heatmaps)} ({n_heat}), descriptor sets {len(sets)} ({n_sets}); counts {counts}; "
                   f"grasp_node log:\n{logs['grasp_node'][-2000:]}")
    assert published & good_desc_stamps, "no pose for a valid descriptor set"
    # the faults were seen and named (a sample of the reasons)
    for text, name in (("colour encoding 'mono16'", "descriptor_node"), ("depth encoding '8UC1'", "descriptor_node"),
                       ("needs 32FC8", "grasp_node"), ("no valid pixel", "grasp_node"),
                       ("frame_id is empty", "grasp_node")):
        assert text in logs[name], f"{name} never logged {text!r}:\n{logs[name][-3000:]}"
