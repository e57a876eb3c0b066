import numpy as np
import pytest
import torch

from dense_descriptor_grasp.evaluation.pck import (
    best_match_pixels,
    correspondence_pixel_errors,
    pck_at_k,
    pck_auc,
    pck_curve,
    sample_descriptors,
    summarize_pixel_errors,
)

H, W = 12, 16


def one_hot_identity(h=H, w=W):
    """(H*W, H, W) descriptor image whose descriptor at pixel (u, v) is the one-hot vector of index v*W + u."""
    return torch.eye(h * w).reshape(h * w, h, w)


def random_pixels(n, seed=0, h=H, w=W):
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, w, n), rng.integers(0, h, n)], axis=1).astype(np.float64)


def test_one_hot_identity_gives_pck_one_everywhere():
    desc = one_hot_identity()
    uv = random_pixels(50)
    err = correspondence_pixel_errors(desc, desc, uv, uv)
    assert err.shape == (50,)
    assert np.all(err == 0)
    s = summarize_pixel_errors(err)
    assert all(v == 1.0 for v in s["pck"].values())
    assert s["auc"] == 1.0 and s["median_error_px"] == 0.0


def test_one_hot_identity_with_mask_and_small_chunks():
    desc = one_hot_identity()
    mask = np.zeros((H, W), bool)
    mask[3:9, 4:12] = True
    vs, us = np.nonzero(mask)
    uv = np.stack([us, vs], 1)[::5].astype(float)
    # chunks of 7 candidates per query force many blocks
    pred, dist = best_match_pixels(desc, desc, uv, mask_b=mask, chunk_elements=7 * len(uv))
    assert torch.equal(pred, torch.as_tensor(uv))
    assert torch.all(dist == 0)


def test_shifted_descriptor_image_matches_shifted_pixel():
    """B is A translated by (+2, +1) px: every best match lands exactly on the true pixel of B."""
    desc_a = one_hot_identity()
    desc_b = torch.zeros_like(desc_a)
    desc_b[:, 1:, 2:] = desc_a[:, :-1, :-2]
    uv_a = np.array([[3.0, 4.0], [10.0, 7.0], [0.0, 0.0]])
    uv_b = uv_a + [2.0, 1.0]
    assert np.all(correspondence_pixel_errors(desc_a, desc_b, uv_a, uv_b) == 0)


def test_hand_computed_case_two_of_four_within_k():
    """Crafted 1-D descriptors (D=1) on a 1x10 image: descriptor = column index, so a query value lands on a
    known column. Four correspondences with true columns chosen to give errors 0, 2, 4 and 7 px."""
    desc_b = torch.arange(10, dtype=torch.float32).reshape(1, 1, 10)
    desc_a = torch.tensor([[[5.0, 2.0, 8.0, 1.0]]])  # queries at u = 0..3 of A
    uv_a = np.array([[0, 0], [1, 0], [2, 0], [3, 0]], float)
    uv_b = np.array([[5, 0], [4, 0], [4, 0], [8, 0]], float)  # best matches are columns 5, 2, 8, 1
    err = correspondence_pixel_errors(desc_a, desc_b, uv_a, uv_b)
    assert np.allclose(err, [0, 2, 4, 7])
    assert pck_at_k(err, 3) == 0.5  # 2 of 4 within 3 px
    assert pck_at_k(err, 1) == 0.25
    assert pck_at_k(err, 4) == 0.75
    assert pck_at_k(err, 10) == 1.0
    # AUC over k=1..100: PCK(1)=PCK(2)... k=1:.25, k=2,3:.5, k=4,5,6:.75, k>=7:1 -> (0.25 + 1 + 2.25 + 94) / 100
    assert pck_auc(err) == pytest.approx((0.25 + 2 * 0.5 + 3 * 0.75 + 94 * 1.0) / 100)
    s = summarize_pixel_errors(err)
    assert s["median_error_px"] == 3.0  # median of 0, 2, 4, 7
    assert s["pck"]["5"] == 0.75 and s["pck"]["20"] == 1.0 and s["num_correspondences"] == 4


def test_mask_restricts_the_search():
    desc_b = torch.arange(10, dtype=torch.float32).reshape(1, 1, 10)
    desc_a = torch.tensor([[[2.0]]])
    mask = np.zeros((1, 10), bool)
    mask[0, 6:] = True  # column 2 (the exact match) is outside the mask: best masked match is column 6
    pred, dist = best_match_pixels(desc_a, desc_b, np.array([[0.0, 0.0]]), mask_b=mask)
    assert pred.tolist() == [[6.0, 0.0]] and dist.item() == pytest.approx(4.0)
    pred, _ = best_match_pixels(desc_a, desc_b, np.array([[0.0, 0.0]]), mask_b=None)
    assert pred.tolist() == [[2.0, 0.0]]


def test_valid_filter_and_diagonal_error():
    desc = one_hot_identity()
    uv_a = np.array([[1.0, 1.0], [5.0, 5.0]])
    uv_b = np.array([[4.0, 5.0], [0.0, 0.0]])  # first: error 5 (3-4-5 triangle)
    err = correspondence_pixel_errors(desc, desc, uv_a, uv_b, valid=np.array([True, False]))
    assert np.allclose(err, [5.0])


def test_pck_curve_is_monotone_and_auc_in_unit_interval():
    err = np.random.default_rng(1).exponential(15.0, size=500)
    curve = pck_curve(err)
    assert curve.shape == (100,) and np.all(np.diff(curve) >= 0)
    assert 0 <= pck_auc(err) <= 1
    assert pck_auc(err) == pytest.approx(curve.mean())


def test_bad_inputs_are_named():
    desc = one_hot_identity()
    with pytest.raises(ValueError, match="uv_a.*outside"):
        best_match_pixels(desc, desc, np.array([[W + 3.0, 0.0]]))
    with pytest.raises(ValueError, match="mask_b is empty"):
        best_match_pixels(desc, desc, np.array([[0.0, 0.0]]), mask_b=np.zeros((H, W), bool))
    with pytest.raises(ValueError, match="descriptor dimensions"):
        best_match_pixels(desc, desc[:5], np.array([[0.0, 0.0]]))
    with pytest.raises(ValueError, match=r"\(D, H, W\)"):
        sample_descriptors(desc[0], np.array([[0.0, 0.0]]))
    with pytest.raises(ValueError, match="non-negative"):
        pck_at_k([-1.0], 3)
