"""Capture folders (Open3D RealSense recorder layout) <-> frames: round trip, Open3D formats, named errors."""

import json
import os

import cv2
import numpy as np
import pytest

from dense_descriptor_grasp.capture.frames import Frame
from dense_descriptor_grasp.capture.importer import (open3d_intrinsic_dict, read_capture_folder,
                                                     read_open3d_intrinsic, read_trajectory_log,
                                                     write_capture_folder)

K = np.array([[200.0, 0.0, 39.5], [0.0, 210.0, 29.5], [0.0, 0.0, 1.0]])


def _frames(n=3, with_pose=True, with_mask=False):
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        depth = rng.uniform(0.3, 1.2, (60, 80)).astype(np.float32)
        depth[:5] = 0.0
        T = np.eye(4)
        T[:3, 3] = [0.1 * i, -0.05 * i, 0.02]
        c, s = np.cos(0.1 * i), np.sin(0.1 * i)
        T[:3, :3] = [[c, -s, 0], [s, c, 0], [0, 0, 1]]
        mask = depth > 0.8 if with_mask else None
        out.append(Frame(rgb=rng.integers(0, 256, (60, 80, 3), dtype=np.uint8), depth=depth, K=K,
                         name=f"{i:06d}", T_world_camera=T if with_pose else None, stamp=1.5 * i, mask=mask))
    return out


def test_round_trip(tmp_path):
    frames = _frames(with_mask=True)
    write_capture_folder(frames, tmp_path)
    assert sorted(os.listdir(tmp_path)) == ["camera_intrinsic.json", "capture.json", "color", "depth", "mask",
                                            "poses.json"]
    assert not [n for d in ("color", "depth", "mask") for n in os.listdir(tmp_path / d) if n.startswith(".")]
    back = read_capture_folder(tmp_path)
    assert [f.name for f in back] == [f.name for f in frames]
    for a, b in zip(frames, back):
        assert np.array_equal(a.rgb, b.rgb)
        assert np.allclose(a.K, b.K)
        assert np.abs(a.depth - b.depth).max() <= 0.0005 + 1e-6          # millimetre units
        assert np.array_equal(a.depth == 0, b.depth == 0)
        assert np.allclose(a.T_world_camera, b.T_world_camera)
        assert b.stamp == a.stamp and np.array_equal(a.mask, b.mask)
    # a depth scale of 0.1 mm keeps more precision and is read back from capture.json
    write_capture_folder(frames, tmp_path / "fine", depth_scale=1e-4)
    back = read_capture_folder(tmp_path / "fine")
    assert np.abs(frames[0].depth - back[0].depth).max() <= 5e-5 + 1e-6
    # stride / max_frames
    assert [f.name for f in read_capture_folder(tmp_path, stride=2)] == ["000000", "000002"]
    assert [f.name for f in read_capture_folder(tmp_path, max_frames=1)] == ["000000"]


def test_open3d_formats_are_followed_exactly(tmp_path):
    o3d = pytest.importorskip("open3d")
    # the intrinsics file open3d writes is read, and ours is read by open3d
    intr = o3d.camera.PinholeCameraIntrinsic(80, 60, 200.0, 210.0, 39.5, 29.5)
    o3d.io.write_pinhole_camera_intrinsic(str(tmp_path / "o3d.json"), intr)
    K_read, w, h = read_open3d_intrinsic(str(tmp_path / "o3d.json"))
    assert (w, h) == (80, 60) and np.allclose(K_read, K)
    (tmp_path / "ours.json").write_text(json.dumps(open3d_intrinsic_dict(K, 80, 60)))
    back = o3d.io.read_pinhole_camera_intrinsic(str(tmp_path / "ours.json"))
    assert np.allclose(back.intrinsic_matrix, K) and (back.width, back.height) == (80, 60)
    # Open3D's trajectory .log holds camera-to-world poses (the inverse of its extrinsics)
    frames = _frames()
    traj = o3d.camera.PinholeCameraTrajectory()
    params = []
    for f in frames:
        p = o3d.camera.PinholeCameraParameters()
        p.intrinsic = intr
        p.extrinsic = np.linalg.inv(f.T_world_camera)
        params.append(p)
    traj.parameters = params
    folder = tmp_path / "cap"
    write_capture_folder(frames, folder, write_poses=False)
    assert not (folder / "poses.json").exists()
    assert all(f.T_world_camera is None for f in read_capture_folder(folder))
    o3d.io.write_pinhole_camera_trajectory(str(folder / "trajectory.log"), traj)
    poses = read_trajectory_log(str(folder / "trajectory.log"))
    assert all(np.allclose(P, f.T_world_camera, atol=1e-7) for P, f in zip(poses, frames))
    assert all(np.allclose(b.T_world_camera, f.T_world_camera, atol=1e-7)
               for b, f in zip(read_capture_folder(folder), frames))


def test_realsense_recorder_layout_with_jpg_and_config_json(tmp_path):
    """color/*.jpg + depth/*.png + camera_intrinsic.json as Open3D's realsense_recorder.py writes them; the depth
    scale from Open3D's reconstruction config.json (units per metre)."""
    (tmp_path / "color").mkdir()
    (tmp_path / "depth").mkdir()
    rgb = np.zeros((60, 80, 3), np.uint8)
    rgb[..., 0] = 200                                            # red
    cv2.imwrite(str(tmp_path / "color" / "000000.jpg"), rgb[:, :, ::-1])
    cv2.imwrite(str(tmp_path / "depth" / "000000.png"), np.full((60, 80), 500, np.uint16))
    json.dump({"width": 80, "height": 60, "intrinsic_matrix": [200, 0, 0, 0, 210, 0, 39.5, 29.5, 1]},
              open(tmp_path / "camera_intrinsic.json", "w"))
    f, = read_capture_folder(tmp_path)
    assert np.allclose(f.depth, 0.5) and f.T_world_camera is None and f.mask is None
    assert abs(int(f.rgb[30, 40, 0]) - 200) < 5 and f.rgb[30, 40, 2] < 10        # RGB order, not BGR
    json.dump({"depth_scale": 4000.0}, open(tmp_path / "config.json", "w"))
    assert np.allclose(read_capture_folder(tmp_path)[0].depth, 0.125)
    assert np.allclose(read_capture_folder(tmp_path, depth_scale=0.002)[0].depth, 1.0)
    # an rgb/ folder works as well
    os.rename(tmp_path / "color", tmp_path / "rgb")
    assert len(read_capture_folder(tmp_path)) == 1


def test_errors_name_the_file(tmp_path):
    write_capture_folder(_frames(), tmp_path)
    with pytest.raises(ValueError, match="does not exist"):
        read_capture_folder(tmp_path / "nope")
    # count mismatch colour vs depth
    os.remove(tmp_path / "depth" / "000001.png")
    with pytest.raises(ValueError, match=r"3 colour images .* and 2 depth images .*000001"):
        read_capture_folder(tmp_path)
    write_capture_folder(_frames(), tmp_path)
    # not 16-bit depth
    cv2.imwrite(str(tmp_path / "depth" / "000002.png"), np.zeros((60, 80), np.uint8))
    with pytest.raises(ValueError, match=r"000002\.png: depth must be a single-channel 16-bit"):
        read_capture_folder(tmp_path)
    # size mismatch against the intrinsics
    cv2.imwrite(str(tmp_path / "depth" / "000002.png"), np.zeros((30, 80), np.uint16))
    with pytest.raises(ValueError, match=r"000002\.png: image is 80x30 but the intrinsics say 80x60"):
        read_capture_folder(tmp_path)
    write_capture_folder(_frames(), tmp_path)
    # missing / broken intrinsics
    os.rename(tmp_path / "camera_intrinsic.json", tmp_path / "x.json")
    with pytest.raises(ValueError, match="no intrinsics .*camera_intrinsic.json"):
        read_capture_folder(tmp_path)
    (tmp_path / "intrinsic.json").write_text(json.dumps({"width": 80, "height": 60, "intrinsic_matrix": [1, 2]}))
    with pytest.raises(ValueError, match=r"intrinsic\.json: intrinsic_matrix must be a flat list of 9"):
        read_capture_folder(tmp_path)
    (tmp_path / "intrinsic.json").write_text(json.dumps(
        {"width": 80, "height": 60, "intrinsic_matrix": K.flatten().tolist()}))    # row-major by mistake
    with pytest.raises(ValueError, match="column-major"):
        read_capture_folder(tmp_path)
    os.remove(tmp_path / "intrinsic.json")
    os.rename(tmp_path / "x.json", tmp_path / "camera_intrinsic.json")
    # depth scale in the wrong convention, bad poses
    (tmp_path / "capture.json").write_text(json.dumps({"depth_scale": 1000}))
    with pytest.raises(ValueError, match="capture.json: depth_scale is metres per depth unit"):
        read_capture_folder(tmp_path)
    (tmp_path / "capture.json").write_text(json.dumps({"depth_scale": 0.001}))
    (tmp_path / "poses.json").write_text(json.dumps({"T_world_camera": {"000000": [[1, 0], [0, 1]]}}))
    with pytest.raises(ValueError, match=r"poses\.json: T_world_camera of '000000' must be a finite 4x4"):
        read_capture_folder(tmp_path)
    os.remove(tmp_path / "poses.json")
    (tmp_path / "trajectory.log").write_text("0 0 1\n1 0 0 0\n0 1 0 0\n0 0 1 0\n0 0 0 1\n")
    with pytest.raises(ValueError, match=r"trajectory\.log: 1 poses for 3 frames"):
        read_capture_folder(tmp_path)


def test_writer_refuses_mixed_cameras(tmp_path):
    frames = _frames(2)
    frames[1] = Frame(rgb=frames[1].rgb, depth=frames[1].depth, K=K * [[2], [2], [1]], name="000001")
    with pytest.raises(ValueError, match="frame 000001 has another size or K"):
        write_capture_folder(frames, tmp_path)
    with pytest.raises(ValueError, match="no frames"):
        write_capture_folder([], tmp_path)
