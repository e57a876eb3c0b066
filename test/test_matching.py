import numpy as np
import pytest
import torch

from dense_descriptor_grasp.grasping.matching import (best_match, colorize_heatmap, distance_maps,
                                                      exclusion_radius_px, heatmap, match_references, refine_subpixel)


def random_unit_descriptors(d=8, h=30, w=40, seed=0):
    x = np.random.default_rng(seed).standard_normal((d, h, w)).astype(np.float32)
    return x / np.linalg.norm(x, axis=0, keepdims=True)


@pytest.mark.parametrize("metric", ["l2", "cosine"])
def test_exact_descriptor_is_found_and_confident(metric):
    desc = random_unit_descriptors()
    refs = np.stack([desc[:, 7, 13], desc[:, 20, 33]])
    matches, maps = match_references(desc, refs, metric, max_distance=0.1, max_ratio=0.9, subpixel="none")
    assert maps.shape == (2, 30, 40)
    assert matches[0].pixel == (13, 7) and matches[1].pixel == (33, 20)
    assert all(m.confident and m.reason == "" for m in matches)
    assert matches[0].distance < 1e-3
    np.testing.assert_allclose(matches[0].uv, [13, 7])


def test_l2_and_cosine_distances_against_direct_formula():
    desc = random_unit_descriptors(d=5, h=6, w=7, seed=3) * 2.0
    ref = np.random.default_rng(1).standard_normal(5).astype(np.float32)
    l2 = distance_maps(desc, ref, "l2")[0]
    cos = distance_maps(desc, ref, "cosine")[0]
    direct_l2 = np.linalg.norm(desc - ref[:, None, None], axis=0)
    direct_cos = 1 - np.einsum("dhw,d->hw", desc, ref) / (np.linalg.norm(desc, axis=0) * np.linalg.norm(ref))
    np.testing.assert_allclose(l2, direct_l2, atol=1e-4)
    np.testing.assert_allclose(cos, direct_cos, atol=1e-5)


def test_ratio_test_rejects_a_repeated_descriptor_far_away_but_not_a_near_one():
    desc = random_unit_descriptors()
    desc[:, 25, 35] = desc[:, 5, 5]          # identical descriptor 36 px away -> ambiguous
    m = best_match(distance_maps(desc, desc[:, 5, 5])[0], max_ratio=0.8, exclusion_radius=6)
    assert not m.confident and "ratio" in m.reason
    desc = random_unit_descriptors()
    desc[:, 5, 6] = desc[:, 5, 5]            # a neighbour inside the exclusion radius is no rival
    m = best_match(distance_maps(desc, desc[:, 5, 5])[0], max_ratio=0.8, exclusion_radius=6)
    assert m.confident


def test_metric_exclusion_radius_follows_the_depth_of_the_match():
    K = np.array([[100.0, 0, 20], [0, 100.0, 15], [0, 0, 1]])
    depth = np.full((30, 40), 0.5, np.float32)
    assert exclusion_radius_px((10, 10), 6.0, 0.05, depth, K) == pytest.approx(10.0)     # 100 px/m * 5 cm / 0.5 m
    assert exclusion_radius_px((10, 10), 12.0, 0.05, depth, K) == 12.0                   # the pixels when wider
    assert exclusion_radius_px((10, 10), 6.0, 0.0, depth, K) == 6.0                      # off
    hole = depth.copy()
    hole[8:13, 8:13] = 0.0
    assert exclusion_radius_px((10, 10), 6.0, 0.05, hole, K) == 6.0                      # no depth near the match
    hole[12, 12] = 0.25
    assert exclusion_radius_px((10, 10), 6.0, 0.05, hole, K) == pytest.approx(20.0)      # the valid depth nearby
    # a rival 8 px away: outside 6 px it makes the match ambiguous, inside a 10 px (5 cm at 0.5 m) disc it does not
    desc = random_unit_descriptors()
    desc[:, 10, 18] = desc[:, 10, 10]
    dmap = distance_maps(desc, desc[:, 10, 10])[0]
    pixels = best_match(dmap, max_ratio=0.8, exclusion_radius=6)
    metric = best_match(dmap, max_ratio=0.8, exclusion_radius=6, depth=depth, K=K, exclusion_radius_m=0.05)
    assert not pixels.confident and "outside 6 px" in pixels.reason
    assert metric.confident and metric.pixel == pixels.pixel
    far = best_match(dmap, max_ratio=0.8, exclusion_radius=6, depth=depth * 4, K=K, exclusion_radius_m=0.05)
    assert not far.confident                                                           # 2.5 px at 2 m: pixels win
    matches, _ = match_references(desc, desc[:, 10, 10][None], "l2", max_ratio=0.8, exclusion_radius=6,
                                  depth=depth, K=K, exclusion_radius_m=0.05)
    assert matches[0].confident


def test_distance_threshold_and_mask():
    desc = random_unit_descriptors()
    other = np.random.default_rng(7).standard_normal(8).astype(np.float32)   # not in the image
    dmap = distance_maps(desc, other, "cosine")[0]
    m = best_match(dmap, max_distance=0.5 * float(dmap.min()))
    assert not m.confident and "max_distance" in m.reason
    mask = np.zeros((30, 40), bool)
    mask[10:20, 20:30] = True
    dmap = distance_maps(desc, desc[:, 3, 3])[0]
    m = best_match(dmap, mask=mask)
    assert 20 <= m.pixel[0] < 30 and 10 <= m.pixel[1] < 20
    inside = np.where(mask, dmap, np.inf)
    assert m.distance == pytest.approx(inside.min())
    empty = best_match(dmap, mask=np.zeros_like(mask))
    assert not empty.confident and "mask" in empty.reason


def smooth_field(h=40, w=50):
    """Descriptors that vary smoothly with position: Gaussian bumps, so a sub-pixel position has a descriptor."""
    centres = [(10, 10), (40, 12), (25, 30), (5, 35), (45, 35), (25, 5)]

    def at(u, v):
        return np.stack([np.exp(-((u - cu) ** 2 + (v - cv) ** 2) / 300.0) for cu, cv in centres])
    vv, uu = np.mgrid[0:h, 0:w].astype(np.float64)
    return at(uu, vv).astype(np.float32), at


@pytest.mark.parametrize("method", ["parabola", "soft_argmin"])
def test_subpixel_refinement_beats_the_integer_pixel(method):
    field, at = smooth_field()
    errors_int, errors_sub = [], []
    for true_uv in [(20.3, 17.6), (31.7, 22.2), (15.45, 25.8)]:
        ref = at(*true_uv).astype(np.float32)
        dmap = distance_maps(field, ref, "l2")[0]
        m = best_match(dmap, subpixel="none")
        uv = refine_subpixel(dmap, m.pixel, method, window=1, temperature=float(np.sort(dmap.ravel())[4]) + 1e-6)
        errors_int.append(np.linalg.norm(np.array(m.pixel) - true_uv))
        errors_sub.append(np.linalg.norm(uv - true_uv))
    assert np.mean(errors_sub) < np.mean(errors_int)
    assert max(errors_sub) < 0.5


def test_bad_shapes_raise_clear_errors():
    desc = random_unit_descriptors()
    with pytest.raises(ValueError, match="D=8"):
        distance_maps(desc, np.zeros((2, 4)))
    with pytest.raises(ValueError, match="metric"):
        distance_maps(desc, desc[:, 0, 0], "manhattan")
    with pytest.raises(ValueError, match="mask shape"):
        best_match(distance_maps(desc, desc[:, 0, 0])[0], mask=np.ones((3, 3), bool))


def test_torch_input_and_heatmap():
    desc = random_unit_descriptors()
    matches, maps = match_references(torch.from_numpy(desc), torch.from_numpy(desc[:, 12, 18][None]), "cosine")
    assert matches[0].pixel == (18, 12)
    heat = heatmap(maps)
    assert heat.shape == (30, 40) and heat.dtype == np.float32
    assert np.unravel_index(np.argmax(heat), heat.shape) == (12, 18)
    assert heat.max() <= 1.0 and heat.min() >= 0.0
    rgb = colorize_heatmap(heat)
    assert rgb.shape == (30, 40, 3) and rgb.dtype == np.uint8
    assert rgb[12, 18, 0] > rgb[12, 18, 2]          # hot = red
    over = colorize_heatmap(heat, np.full((30, 40, 3), 255, np.uint8), alpha=0.5)
    assert over.min() >= 127
