"""The RGB-D sensor noise model: std growing with distance, edge / shadow / dark dropouts, quantisation, identity."""

import numpy as np
import pytest

from dense_descriptor_grasp.capture.noise import (NoiseConfig, apply_rgbd_noise, depth_noise_std, edge_pixels,
                                                  stereo_shadow)

GREY = np.full((120, 160, 3), 128, np.uint8)
ONLY_NOISE = dict(edge_dropout=0.0, stereo_baseline_m=0.0, dark_dropout=0.0, depth_unit_m=0.0, rgb_noise_std=0.0)


def test_zero_noise_config_is_identity():
    rng = np.random.default_rng(0)
    rgb = rng.integers(0, 256, (60, 80, 3), dtype=np.uint8)
    depth = rng.uniform(0.2, 2.0, (60, 80)).astype(np.float32)
    depth[10:20, 10:30] = 0.0
    out_rgb, out_depth = apply_rgbd_noise(rgb, depth, np.random.default_rng(1), NoiseConfig.none())
    assert out_rgb.dtype == np.uint8 and out_depth.dtype == np.float32
    assert np.array_equal(out_rgb, rgb) and np.array_equal(out_depth, depth)


@pytest.mark.parametrize("correlated", [0.0, 0.5])
def test_depth_std_grows_with_distance_as_configured(correlated):
    cfg = NoiseConfig(correlated_fraction=correlated, **ONLY_NOISE)
    for z in (0.3, 1.0, 2.0):
        depth = np.full((120, 160), z, np.float32)
        _, noisy = apply_rgbd_noise(GREY, depth, np.random.default_rng(2), cfg)
        err = noisy.astype(np.float64) - z
        expected = 0.01 * z * z
        assert abs(err.mean()) < 0.1 * expected
        assert err.std() == pytest.approx(expected, rel=0.1), (z, err.std())
    assert depth_noise_std(0.3) == pytest.approx(0.0009)
    assert depth_noise_std(2.0) == pytest.approx(0.04)           # 2 % at 2 m: the D435 datasheet's bound


def test_quantisation_steps():
    cfg = NoiseConfig(**{**ONLY_NOISE, "depth_unit_m": 0.001})
    depth = np.random.default_rng(3).uniform(0.3, 1.5, (60, 80)).astype(np.float32)
    _, noisy = apply_rgbd_noise(GREY[:60, :80], depth, np.random.default_rng(4), cfg)
    units = noisy.astype(np.float64) / 0.001
    assert np.allclose(units, np.round(units), atol=1e-3)
    assert len(np.unique(np.round(units))) > 100     # noise added before the rounding


def _step_scene():
    """A foreground box (0.4 m) in front of a wall (0.8 m) in the middle of a 120 x 160 image."""
    depth = np.full((120, 160), 0.8, np.float32)
    depth[40:80, 60:100] = 0.4
    return depth


def test_edges_lose_depth_and_flat_areas_do_not():
    depth = _step_scene()
    cfg = NoiseConfig(edge_dropout=1.0, edge_band_px=1, stereo_baseline_m=0.0, dark_dropout=0.0)
    _, noisy = apply_rgbd_noise(GREY, depth, np.random.default_rng(5), cfg)
    edges = edge_pixels(depth, 0.02, 1)
    # the band: one pixel on each side of the box's outline
    assert edges[40, 70] and edges[39, 70] and edges[60, 59] and edges[60, 60] and not edges[41, 70]
    assert not edges[60, 80] and not edges[10, 10]
    assert (noisy[edges] == 0).all()
    assert (noisy[~edges] > 0).all()
    # with probability 0.5 about half of them
    cfg = NoiseConfig(edge_dropout=0.5, edge_band_px=1, stereo_baseline_m=0.0, dark_dropout=0.0)
    _, noisy = apply_rgbd_noise(GREY, depth, np.random.default_rng(6), cfg)
    assert 0.4 < (noisy[edges] == 0).mean() < 0.6


def test_stereo_shadow_is_left_of_the_foreground_with_the_expected_width():
    depth = _step_scene()
    fx, B = 200.0, 0.05
    shadow = stereo_shadow(depth, fx, B)
    width = fx * B * (1 / 0.4 - 1 / 0.8)   # 12.5 px
    rows = shadow[40:80]
    assert not shadow[:40].any() and not shadow[80:].any()
    assert not rows[:, 60:].any()            # never on the box or right of it
    assert rows[:, 60 - 11:60].all()   # 12.5 px: the 12th is half hidden
    assert not rows[:, :60 - 13].any(), width
    K = np.array([[fx, 0, 80], [0, fx, 60], [0, 0, 1.0]])
    cfg = NoiseConfig(edge_dropout=0.0, dark_dropout=0.0, stereo_baseline_m=B)
    _, noisy = apply_rgbd_noise(GREY, depth, np.random.default_rng(7), cfg, K=K)
    assert (noisy[shadow] == 0).all() and (noisy[~shadow] > 0).all()


def test_dark_pixels_lose_depth():
    rgb = GREY.copy()
    rgb[:, :40] = 0             # black
    rgb[:, 40:80] = 15          # dark: luminance 0.059, half of dark_level 0.12
    depth = np.full((120, 160), 0.5, np.float32)
    cfg = NoiseConfig(edge_dropout=0.0, stereo_baseline_m=0.0, dark_dropout=0.9, dark_level=0.12)
    _, noisy = apply_rgbd_noise(rgb, depth, np.random.default_rng(8), cfg)
    black, dark, grey = ((noisy[:, s] == 0).mean() for s in (slice(0, 40), slice(40, 80), slice(80, 160)))
    assert black == pytest.approx(0.9, abs=0.03)
    assert dark == pytest.approx(0.9 * (0.12 - 15 / 255) / 0.12, abs=0.04)
    assert grey == 0.0


def test_range_limits_colour_noise_and_determinism():
    depth = np.full((60, 80), 0.5, np.float32)
    depth[:, :10] = 0.05        # too close
    depth[:, 10:20] = 9.0       # too far
    depth[:, 20:30] = 0.0       # already missing
    cfg = NoiseConfig(edge_dropout=0.0, stereo_baseline_m=0.0, rgb_noise_std=3.0)
    rgb = GREY[:60, :80]
    a = apply_rgbd_noise(rgb, depth, np.random.default_rng(9), cfg)
    b = apply_rgbd_noise(rgb, depth, np.random.default_rng(9), cfg)
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert (a[1][:, :30] == 0).all() and (a[1][:, 30:] > 0).all()
    assert (a[0].astype(float) - 128).std() == pytest.approx(3.0, rel=0.1)


def test_bad_inputs_and_config_raise():
    with pytest.raises(ValueError, match="rgb must be"):
        apply_rgbd_noise(np.zeros((4, 4, 3), np.float32), np.zeros((4, 4)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="differ in size"):
        apply_rgbd_noise(np.zeros((4, 4, 3), np.uint8), np.zeros((4, 5)), np.random.default_rng(0))
    with pytest.raises(ValueError, match="edge_dropout"):
        NoiseConfig(edge_dropout=1.5)
    with pytest.raises(ValueError, match="max_depth_m"):
        NoiseConfig(min_depth_m=2.0, max_depth_m=1.0)
