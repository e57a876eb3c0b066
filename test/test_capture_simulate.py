"""The simulated capture: the orbit, the truth it carries, determinism, the folder it writes and its CLI."""

import ast
from pathlib import Path

import numpy as np
import pytest

from dense_descriptor_grasp.capture.importer import read_capture_folder
from dense_descriptor_grasp.capture.noise import NoiseConfig
from dense_descriptor_grasp.capture.simulate import (OrbitConfig, main, orbit_poses, read_simulated_truth,
                                                     simulate_capture)

SMALL = OrbitConfig(views=4, width=80, height=60)


@pytest.fixture(scope="module")
def capture():
    return simulate_capture("duck", OrbitConfig(views=6, width=120, height=90), seed=3)


def test_orbit_is_a_closed_helix_looking_at_the_centre():
    orbit = OrbitConfig(views=36, elevation_deg=(30.0, 50.0), distance_m=0.3, start_azimuth_deg=10.0)
    centre = np.array([0.0, 0.0, 0.04])
    poses, angles = orbit_poses(np.random.default_rng(0), centre, orbit)
    assert len(poses) == 36
    az = np.array([a for a, _ in angles])
    el = np.array([e for _, e in angles])
    assert np.allclose(np.diff(np.unwrap(np.radians(az))), np.radians(10.0))
    assert el[0] == pytest.approx(30.0) and el[18] == pytest.approx(50.0) and el.max() <= 50.0 + 1e-9
    steps, turns = [], []
    for T in poses:
        R = T[:3, :3]
        assert np.allclose(R @ R.T, np.eye(3), atol=1e-9) and np.linalg.det(R) > 0
        c = np.linalg.inv(T)[:3] @ np.append(centre, 1.0)          # the centre in the camera frame
        assert c[2] == pytest.approx(0.3, abs=0.02)                  # distance +- jitter
        assert np.hypot(c[0], c[1]) < 0.02                           # on the optical axis +- look-at jitter
    for A, B in zip(poses, poses[1:] + poses[:1]):                   # the loop closes: the last step is small too
        steps.append(np.linalg.norm(A[:3, 3] - B[:3, 3]))
        dR = A[:3, :3].T @ B[:3, :3]
        turns.append(np.degrees(np.arccos(np.clip((np.trace(dR) - 1) / 2, -1, 1))))
    assert max(steps) < 0.06 and max(turns) < 14.0, (max(steps), max(turns))


def test_capture_carries_the_truth(capture):
    assert capture.object_name == "duck" and len(capture.frames) == 6
    assert capture.T_world_object.shape == (4, 4)
    for f, d, m in zip(capture.frames, capture.true_depths, capture.true_masks):
        assert f.rgb.shape == (90, 120, 3) and f.T_world_camera is not None and f.mask is None
        assert m.dtype == bool and 100 < m.sum() < 0.5 * m.size
        # the noisy depth agrees with the truth where both are valid, within a few sigma at that depth
        both = (f.depth > 0) & (d > 0)
        assert both.mean() > 0.5
        err = f.depth[both] - d[both]
        assert np.median(np.abs(err)) < 0.003 and not np.array_equal(f.depth, d)
        # back-projected true-mask pixels lie near the object (within its radius of the orbit centre)
        v, u = np.nonzero(m & (d > 0))
        z = d[v, u]
        X = np.stack([(u - f.K[0, 2]) * z / f.K[0, 0], (v - f.K[1, 2]) * z / f.K[1, 1], z], 1)
        Xw = X @ f.T_world_camera[:3, :3].T + f.T_world_camera[:3, 3]
        assert np.linalg.norm(Xw - capture.center, axis=1).max() < capture.radius * 1.05
        assert Xw[:, 2].min() > -0.002                                # nothing below the table
    assert capture.settings["noise"]["depth_noise_a"] == 0.01


def test_same_seed_same_capture_and_noise_off():
    a = simulate_capture("duck", SMALL, seed=1)
    b = simulate_capture("duck", SMALL, seed=1)
    c = simulate_capture("duck", SMALL, seed=1, noise=None)
    for fa, fb, fc, d in zip(a.frames, b.frames, c.frames, a.true_depths):
        assert np.array_equal(fa.rgb, fb.rgb) and np.array_equal(fa.depth, fb.depth)
        assert np.array_equal(fa.T_world_camera, fc.T_world_camera)
        assert np.array_equal(fc.depth, d)                           # no noise: the renderer's depth
    assert not np.array_equal(a.frames[0].depth, simulate_capture("duck", SMALL, seed=2).frames[0].depth)


def test_cli_writes_an_importable_folder_with_truth(tmp_path):
    out = tmp_path / "cap"
    assert main(["--out", str(out), "--views", "3", "--width", "80", "--height", "60", "--seed", "4"]) == 0
    frames = read_capture_folder(out)
    assert [f.name for f in frames] == ["000000", "000001", "000002"]
    assert all(f.T_world_camera is None for f in frames)            # poses are truth, not input, by default
    truth = read_simulated_truth(out)
    assert truth["object"] == "duck" and set(truth["masks"]) == {"000000", "000001", "000002"}
    ref = simulate_capture("duck", OrbitConfig(views=3, width=80, height=60), seed=4)
    for f, r in zip(frames, ref.frames):
        assert np.array_equal(f.rgb, r.rgb)
        assert np.abs(f.depth - r.depth).max() < 1e-6 + 0.0005      # millimetre PNGs of 1 mm-quantised depth
        assert np.array_equal(truth["masks"][f.name], ref.true_masks[int(f.name)])
        assert np.allclose(truth["T_world_camera"][f.name], r.T_world_camera)
    out2 = tmp_path / "posed"
    assert main(["--out", str(out2), "--views", "2", "--width", "80", "--height", "60", "--noise", "none",
                 "--with-poses"]) == 0
    frames = read_capture_folder(out2)
    truth = read_simulated_truth(out2)
    assert all(np.allclose(f.T_world_camera, truth["T_world_camera"][f.name]) for f in frames)
    assert all(np.abs(f.depth - truth["depths"][f.name]).max() < 0.0006 for f in frames)
    assert main(["--out", str(tmp_path / "bad"), "--views", "0"]) == 2
    assert main(["--out", str(tmp_path / "bad"), "--object", "no_such_thing"]) == 2


def test_console_script_is_registered():
    tree = ast.parse((Path(__file__).resolve().parents[1] / "setup.py").read_text())
    scripts = next(ast.literal_eval(n.value) for n in tree.body if isinstance(n, ast.Assign)
                   and any(getattr(t, "id", None) == "CONSOLE_SCRIPTS" for t in n.targets))
    assert scripts["simulate_capture"] == "dense_descriptor_grasp.capture.simulate:main"


def test_orbit_config_validates():
    with pytest.raises(ValueError, match="elevation_deg"):
        OrbitConfig(elevation_deg=(50.0, 30.0))
    with pytest.raises(ValueError, match="views"):
        OrbitConfig(views=0)
    assert NoiseConfig.none().as_dict()["max_depth_m"] == "inf"
