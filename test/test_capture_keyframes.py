"""Keyframes of a live capture (selector modes), the resumable capture folder writer, and TF chains (ROS-free)."""
import json
import os

import numpy as np
import pytest

from dense_descriptor_grasp.capture.frames import Frame
from dense_descriptor_grasp.capture.importer import read_capture_folder, write_capture_folder
from dense_descriptor_grasp.capture.keyframes import CaptureFolderWriter, KeyframeSelector, pose_change
from dense_descriptor_grasp.capture.tf_chain import TfLookupError, TransformTree, transform_to_matrix

H, W = 30, 40
K = np.array([[50.0, 0.0, 19.5], [0.0, 52.0, 14.5], [0.0, 0.0, 1.0]])


def _pose(x=0.0, y=0.0, z=0.0, yaw_deg=0.0):
    c, s = np.cos(np.radians(yaw_deg)), np.sin(np.radians(yaw_deg))
    T = np.eye(4)
    T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
    T[:3, 3] = [x, y, z]
    return T


def _frame(i, pose=True, mask=False, K_=K, size=(H, W)):
    rng = np.random.default_rng(i)
    depth = rng.uniform(0.3, 1.5, size).astype(np.float32)
    depth[0] = 0.0
    return Frame(rgb=rng.integers(0, 256, size + (3,), dtype=np.uint8), depth=depth, K=K_, name=f"x{i}",
                 T_world_camera=_pose(0.1 * i, yaw_deg=5 * i) if pose else None, stamp=10.0 + 0.5 * i,
                 mask=(depth > 1.0) if mask else None)


# ---------------------------------------------------------------------------------------------- selector
def test_pose_change():
    t, r = pose_change(_pose(), _pose(0.3, 0.4, 0.0, 30.0))
    assert t == pytest.approx(0.5) and r == pytest.approx(30.0)


def test_motion_mode_thresholds():
    s = KeyframeSelector(min_translation=0.05, min_rotation_deg=10.0, interval=0.0)
    assert s.consider(0.0, _pose()) == "first"
    assert s.consider(0.1, _pose(0.04)) is None                  # 4 cm < 5 cm
    assert s.consider(0.2, _pose(0.04, yaw_deg=9.0)) is None     # and 9 deg < 10 deg
    assert s.consider(0.3, _pose(0.06)) == "moved"               # 6 cm since the last keyframe
    assert s.consider(0.4, _pose(0.10)) is None                  # 4 cm since the last keyframe (not since the first)
    assert s.consider(0.5, _pose(0.06, yaw_deg=11.0)) == "moved"  # rotation alone
    assert s.consider(100.0, _pose(0.06, yaw_deg=11.0)) is None   # time alone never keeps a posed frame
    assert s.kept == 3
    assert s.motion_since_last(_pose(0.06, yaw_deg=21.0)) == pytest.approx((0.0, 10.0))


def test_interval_mode_without_poses():
    s = KeyframeSelector(interval=1.0)
    kept = [t for t in np.arange(0.0, 3.05, 0.1) if s.consider(float(t)) is not None]
    assert kept == pytest.approx([0.0, 1.0, 2.0, 3.0], abs=1e-9)
    # time going backwards (bag loop) restarts the interval there
    assert s.consider(0.5) is None
    assert s.consider(1.2) is None and s.consider(1.5) == "interval"
    # interval 0: only requests keep frames after the first
    s = KeyframeSelector(interval=0.0)
    assert s.consider(0.0) == "first" and s.consider(100.0) is None


def test_requests_and_request_only_mode():
    s = KeyframeSelector(interval=0.0, automatic=False)
    assert s.consider(0.0, _pose()) is None and s.consider(1.0) is None
    s.request()
    assert s.requested
    assert s.decide(1.1, _pose()) == "request"
    assert s.requested                                   # decide changes nothing ...
    s.keep(1.1, _pose(), "request")
    assert not s.requested and s.kept == 1               # ... keep uses the request up
    assert s.consider(1.2, _pose(5.0)) is None
    # a request is served by the next frame even when it has not moved
    s = KeyframeSelector()
    assert s.consider(0.0, _pose()) == "first" and s.consider(0.1, _pose()) is None
    s.request()
    assert s.consider(0.2, _pose()) == "request" and s.consider(0.3, _pose()) is None


def test_selector_refuses_bad_settings():
    for kwargs in ({"min_translation": 0.0}, {"min_rotation_deg": -1.0}, {"interval": float("nan")}):
        with pytest.raises(ValueError):
            KeyframeSelector(**kwargs)


# ---------------------------------------------------------------------------------------------- writer
def _no_temporaries(folder):
    return not [n for _, _, files in os.walk(folder) for n in files if n.startswith(".")]


def test_writer_round_trip_through_read_capture_folder(tmp_path):
    folder = tmp_path / "cap"
    w = CaptureFolderWriter(folder)
    assert len(w) == 0 and w.next_name == "000000" and w.last is None
    frames = [_frame(i, pose=(i != 1), mask=(i == 2)) for i in range(3)]
    names = [w.append(f) for f in frames]
    assert names == ["000000", "000001", "000002"]
    assert _no_temporaries(folder)
    back = read_capture_folder(folder)
    assert [f.name for f in back] == names
    for a, b in zip(frames, back):
        assert np.array_equal(a.rgb, b.rgb) and np.allclose(b.K, K)
        assert np.abs(a.depth - b.depth).max() <= 0.0005 + 1e-6 and np.array_equal(a.depth == 0, b.depth == 0)
        assert b.stamp == a.stamp
        assert (b.T_world_camera is None) == (a.T_world_camera is None)
        if a.T_world_camera is not None:
            assert np.allclose(a.T_world_camera, b.T_world_camera)
    assert back[2].mask is not None and np.array_equal(back[2].mask, frames[2].mask) and back[0].mask is None
    # the same bytes as the batch writer (one writer)
    write_capture_folder([Frame(rgb=f.rgb, depth=f.depth, K=f.K, name=n, T_world_camera=_pose(), stamp=f.stamp)
                          for f, n in zip(frames, names)], tmp_path / "batch")
    for n in names:
        for d in ("color", "depth"):
            assert (folder / d / f"{n}.png").read_bytes() == (tmp_path / "batch" / d / f"{n}.png").read_bytes()
    assert (folder / "camera_intrinsic.json").read_text() == (tmp_path / "batch" / "camera_intrinsic.json").read_text()


def test_writer_resumes_numbering_stamps_and_poses(tmp_path):
    folder = tmp_path / "cap"
    w = CaptureFolderWriter(folder)
    for i in range(2):
        w.append(_frame(i))
    w2 = CaptureFolderWriter(folder)
    assert w2.resumed == 2 and w2.names == ["000000", "000001"] and w2.next_name == "000002"
    assert w2.stamps == {"000000": 10.0, "000001": 10.5}
    assert np.allclose(w2.poses["000001"], _pose(0.1, yaw_deg=5))
    assert w2.last[0] == "000001" and w2.last[1] == 10.5 and np.allclose(w2.last[2], _pose(0.1, yaw_deg=5))
    w2.append(_frame(2, pose=False))
    back = read_capture_folder(folder)
    assert [f.name for f in back] == ["000000", "000001", "000002"]
    assert [f.stamp for f in back] == [10.0, 10.5, 11.0]
    assert back[0].T_world_camera is not None and back[2].T_world_camera is None
    # a folder written by write_capture_folder (or another tool: no capture.json stamps) resumes too
    write_capture_folder([_frame(i) for i in range(2)], tmp_path / "batch")
    w3 = CaptureFolderWriter(tmp_path / "batch")
    assert w3.names == ["x0", "x1"] and w3.next_name == "000002"


def test_writer_resumes_a_folder_of_another_tool(tmp_path):
    """Open3D recorder layout: colour JPEGs, no capture.json, config.json depth scale, trajectory.log."""
    import cv2

    folder = tmp_path / "o3d"
    (folder / "color").mkdir(parents=True)
    (folder / "depth").mkdir()
    for i in range(2):
        cv2.imwrite(str(folder / "color" / f"{i:06d}.jpg"), np.zeros((H, W, 3), np.uint8))
        cv2.imwrite(str(folder / "depth" / f"{i:06d}.png"), np.full((H, W), 5000, np.uint16))
    (folder / "camera_intrinsic.json").write_text(json.dumps(
        {"width": W, "height": H, "intrinsic_matrix": K.flatten(order="F").tolist()}))
    (folder / "config.json").write_text(json.dumps({"depth_scale": 10000.0}))      # units per metre
    (folder / "trajectory.log").write_text("".join(
        f"{i} {i} {i + 1}\n" + "\n".join(" ".join(str(v) for v in row) for row in _pose(0.1 * i)) + "\n"
        for i in range(2)))
    w = CaptureFolderWriter(folder)
    assert w.depth_scale == pytest.approx(1e-4) and w.next_name == "000002"
    w.append(_frame(5))
    back = read_capture_folder(folder)
    assert len(back) == 3 and back[0].depth[5, 5] == pytest.approx(0.5)
    assert np.allclose(back[1].T_world_camera, _pose(0.1))
    assert np.allclose(back[2].T_world_camera, _frame(5).T_world_camera)
    assert np.abs(back[2].depth - _frame(5).depth).max() <= 5e-5 + 1e-6       # the folder's 0.1 mm units


def test_writer_interrupted_mid_frame_resumes_without_it(tmp_path):
    folder = tmp_path / "cap"
    w = CaptureFolderWriter(folder)
    w.append(_frame(0))
    # a writer killed after the images and poses.json of frame 000001, before capture.json listed it
    capture = (folder / "capture.json").read_text()
    w.append(_frame(1, mask=True))
    (folder / "capture.json").write_text(capture)
    (folder / "depth" / "000001.png").unlink()                   # and one image never written
    with pytest.raises(ValueError, match="do not pair up"):      # the reader sees the half-written frame ...
        read_capture_folder(folder)
    w2 = CaptureFolderWriter(folder)                             # ... until the writer resumes
    assert w2.names == ["000000"] and w2.next_name == "000001"
    assert sorted(os.path.basename(p) for p in w2.removed) == ["000001.png", "000001.png"]
    assert [f.name for f in read_capture_folder(folder)] == ["000000"]
    w2.append(_frame(2, pose=False))
    back = read_capture_folder(folder)
    assert [f.name for f in back] == ["000000", "000001"] and back[1].T_world_camera is None
    assert back[1].mask is None
    # killed during the very first frame: capture.json (empty) was written before the images
    first = tmp_path / "first"
    CaptureFolderWriter(first).append(_frame(0))
    (first / "capture.json").write_text(json.dumps({"depth_scale": 0.001, "stamps": {}}))
    w3 = CaptureFolderWriter(first)
    assert w3.names == [] and not (first / "poses.json").exists()
    w3.append(_frame(3, pose=False))
    back = read_capture_folder(first)
    assert len(back) == 1 and back[0].T_world_camera is None and back[0].stamp == 11.5


def test_writer_refuses_another_camera_naming_the_file(tmp_path):
    folder = tmp_path / "cap"
    CaptureFolderWriter(folder).append(_frame(0))
    w = CaptureFolderWriter(folder)
    K2 = K.copy()
    K2[0, 0] = 60.0
    with pytest.raises(ValueError, match="camera_intrinsic.json.*one camera per capture folder"):
        w.append(_frame(1, K_=K2))
    with pytest.raises(ValueError, match="camera_intrinsic.json"):
        w.append(_frame(1, size=(H + 2, W)))
    with pytest.raises(ValueError, match="camera_intrinsic.json"):
        CaptureFolderWriter(folder, K=K2, width=W, height=H)
    with pytest.raises(ValueError, match="capture.json.*depth scale"):
        CaptureFolderWriter(folder, depth_scale=1e-4)
    assert [f.name for f in read_capture_folder(folder)] == ["000000"]      # nothing written by the refusals
    # an image the capture does not list, before its last frame, is not deleted
    (folder / "color" / "0000.png").write_bytes((folder / "color" / "000000.png").read_bytes())
    with pytest.raises(ValueError, match="0000.png"):
        CaptureFolderWriter(folder)
    assert (folder / "color" / "0000.png").exists()


# ---------------------------------------------------------------------------------------------- TF
def _stamped(parent, child, T, sec=0):
    from geometry_msgs.msg import TransformStamped

    from dense_descriptor_grasp.geometry.se3 import quaternion_from_matrix

    import torch

    msg = TransformStamped()
    msg.header.frame_id, msg.child_frame_id = parent, child
    msg.header.stamp.sec = sec
    q = quaternion_from_matrix(torch.as_tensor(T[:3, :3])).numpy()
    msg.transform.translation.x, msg.transform.translation.y, msg.transform.translation.z = (float(v) for v in
                                                                                            T[:3, 3])
    (msg.transform.rotation.x, msg.transform.rotation.y, msg.transform.rotation.z,
     msg.transform.rotation.w) = (float(v) for v in q)
    return msg


def test_tf_chain_through_the_tree_with_geometry_msgs():
    pytest.importorskip("geometry_msgs")
    T_map_base = _pose(1.0, 2.0, 0.0, 90.0)
    T_base_arm = _pose(0.2, 0.0, 0.5, -30.0)
    T_arm_cam = _pose(0.0, 0.1, 0.05, 45.0)
    T_base_lidar = _pose(0.3, 0.0, 0.2, 10.0)
    tree = TransformTree()
    problems = tree.add_messages([_stamped("map", "base", T_map_base, 5),
                                  _stamped("/base", "arm", T_base_arm, 7)])
    assert problems == []
    tree.add_messages([_stamped("arm", "camera_optical", T_arm_cam), _stamped("base", "lidar", T_base_lidar)],
                      static=True)
    T, oldest = tree.lookup_stamped("map", "camera_optical")
    assert np.allclose(T, T_map_base @ T_base_arm @ T_arm_cam, atol=1e-9)
    assert oldest == 5.0                                  # static links carry no age
    # across branches and upwards: lidar -> camera
    assert np.allclose(tree.lookup("lidar", "camera_optical"),
                       np.linalg.inv(T_base_lidar) @ T_base_arm @ T_arm_cam, atol=1e-9)
    assert np.allclose(tree.lookup("camera_optical", "map"), np.linalg.inv(T_map_base @ T_base_arm @ T_arm_cam))
    assert np.allclose(tree.lookup("arm", "arm"), np.eye(4))
    assert tree.lookup_stamped("base", "lidar")[1] is None
    # latest values win
    T_base_arm2 = _pose(0.25, 0.0, 0.5, -20.0)
    tree.add_message(_stamped("base", "arm", T_base_arm2, 9))
    assert np.allclose(tree.lookup("map", "camera_optical"), T_map_base @ T_base_arm2 @ T_arm_cam, atol=1e-9)
    assert set(tree.frames) == {"map", "base", "arm", "camera_optical", "lidar"}


def test_tf_chain_errors_name_the_missing_link():
    pytest.importorskip("geometry_msgs")
    tree = TransformTree()
    with pytest.raises(TfLookupError, match="'world' is unknown.*none yet"):
        tree.lookup("world", "camera")
    tree.add("world", "base", _pose(1.0))
    tree.add("camera_link", "camera", _pose(0.1))
    with pytest.raises(TfLookupError, match="two unconnected TF trees.*between 'world' and 'camera_link'"):
        tree.lookup("world", "camera")
    with pytest.raises(TfLookupError, match="'cam' is unknown.*known frames: base, camera, camera_link, world"):
        tree.lookup("world", "cam")
    tree.add("base", "camera_link", _pose(0.0, 0.2))
    assert np.allclose(tree.lookup("world", "camera")[:3, 3], [1.1, 0.2, 0.0])
    # bad transforms are refused one by one, the others are kept
    bad = _stamped("world", "tool", _pose())
    bad.transform.rotation.w = 0.0
    bad.transform.rotation.x = 0.0
    bad.transform.rotation.y = 0.0
    bad.transform.rotation.z = 0.0
    problems = tree.add_messages([bad, _stamped("world", "table", _pose(0.5))])
    assert len(problems) == 1 and "'world' -> 'tool'" in problems[0] and "quaternion" in problems[0]
    assert np.allclose(tree.lookup("world", "table")[:3, 3], [0.5, 0, 0])
    with pytest.raises(ValueError):
        tree.add("a", "a", np.eye(4))
    with pytest.raises(ValueError):
        transform_to_matrix([0, 0, float("nan")], [0, 0, 0, 1])
