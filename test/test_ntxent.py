"""Pixelwise NT-Xent loss: sampling, the exact formula on a small case, aligned < shuffled, invalid rows ignored."""
import math

import pytest
import torch
import torch.nn.functional as F

from dense_descriptor_grasp.training.ntxent import ntxent_loss, sample_descriptors


def _random_descriptors(B=2, D=8, H=16, W=20, seed=0):
    return torch.randn(B, D, H, W, generator=torch.Generator().manual_seed(seed))


def _grid_uv(B, M, H, W, seed=0):
    g = torch.Generator().manual_seed(seed)
    idx = torch.stack([torch.randperm(H * W, generator=g)[:M] for _ in range(B)])
    return torch.stack([idx % W, idx // W], -1).float()


def test_sample_descriptors_exact_at_integer_pixels_and_bilinear_between():
    d = _random_descriptors()
    uv = torch.tensor([[[0.0, 0.0], [19.0, 15.0], [7.0, 3.0]], [[5.0, 9.0], [0.0, 15.0], [19.0, 0.0]]])
    s = sample_descriptors(d, uv)
    assert s.shape == (2, 3, 8)
    for b in range(2):
        for m in range(3):
            u, v = uv[b, m].long()
            assert torch.allclose(s[b, m], d[b, :, v, u], atol=1e-5)
    mid = sample_descriptors(d, torch.tensor([[[7.5, 3.0]], [[5.0, 9.5]]]))
    assert torch.allclose(mid[0, 0], 0.5 * (d[0, :, 3, 7] + d[0, :, 3, 8]), atol=1e-5)
    assert torch.allclose(mid[1, 0], 0.5 * (d[1, :, 9, 5] + d[1, :, 10, 5]), atol=1e-5)


def test_matches_hand_computed_formula():
    B, D, H, W, M, tau = 1, 4, 6, 7, 5, 0.2
    da, db = _random_descriptors(B, D, H, W, 1), _random_descriptors(B, D, H, W, 2)
    uv_a, uv_b = _grid_uv(B, M, H, W, 3), _grid_uv(B, M, H, W, 4)
    valid = torch.ones(B, M, dtype=torch.bool)
    a = F.normalize(da[0][:, uv_a[0, :, 1].long(), uv_a[0, :, 0].long()].T, dim=-1)
    b = F.normalize(db[0][:, uv_b[0, :, 1].long(), uv_b[0, :, 0].long()].T, dim=-1)
    s = a @ b.T / tau
    a2b = sum(-s[k, k] + torch.logsumexp(s[k], 0) for k in range(M)) / M
    b2a = sum(-s[k, k] + torch.logsumexp(s[:, k], 0) for k in range(M)) / M
    expected = 0.5 * (a2b + b2a)
    assert ntxent_loss(da, db, uv_a, uv_b, valid, tau).item() == pytest.approx(expected.item(), rel=1e-5)


def test_aligned_lower_than_shuffled():
    B, D, H, W, M = 2, 16, 24, 32, 64
    da = _random_descriptors(B, D, H, W)
    uv_a = _grid_uv(B, M, H, W, 1)
    shift = torch.tensor([3.0, 2.0])
    uv_b = uv_a + shift  # B is A shifted by (3, 2) pixels
    db = torch.roll(da, shifts=(2, 3), dims=(2, 3))
    valid = (uv_b[..., 0] <= W - 1) & (uv_b[..., 1] <= H - 1)
    aligned = ntxent_loss(da, db, uv_a, uv_b, valid)
    perm = torch.randperm(M, generator=torch.Generator().manual_seed(5))
    shuffled = ntxent_loss(da, db, uv_a, uv_b[:, perm], valid & valid[:, perm])
    assert aligned.item() < 0.05
    assert shuffled.item() > 1.0
    # random descriptors: about log(m)
    rand = ntxent_loss(da, _random_descriptors(B, D, H, W, 9), uv_a, uv_b, valid, temperature=10.0)
    assert rand.item() == pytest.approx(math.log(valid.sum(1).float().mean().item()), rel=0.1)


def test_invalid_correspondences_are_neither_anchors_nor_negatives():
    B, D, H, W, M = 1, 8, 12, 12, 10
    da, db = _random_descriptors(B, D, H, W, 1), _random_descriptors(B, D, H, W, 2)
    uv_a, uv_b = _grid_uv(B, M, H, W, 3), _grid_uv(B, M, H, W, 4)
    valid = torch.tensor([[True] * 6 + [False] * 4])
    full = ntxent_loss(da, db, uv_a, uv_b, valid)
    kept = ntxent_loss(da, db, uv_a[:, :6], uv_b[:, :6], torch.ones(1, 6, dtype=torch.bool))
    assert full.item() == pytest.approx(kept.item(), rel=1e-6)
    da.requires_grad_(True)
    loss = ntxent_loss(da, db, uv_a, uv_b, torch.zeros(1, M, dtype=torch.bool))
    loss.backward()
    assert loss.item() == 0.0 and torch.isfinite(da.grad).all()
    with pytest.raises(ValueError, match="temperature"):
        ntxent_loss(da, db, uv_a, uv_b, valid, temperature=0.0)


def test_low_resolution_features_sampled_at_image_pixels_equal_the_upsampled_image():
    torch.manual_seed(0)
    feats = torch.randn(2, 5, 6, 8)
    full = torch.nn.functional.interpolate(feats, size=(24, 32), mode="bilinear", align_corners=False)
    uv = torch.tensor([[[0.0, 0.0], [31.0, 23.0], [7.0, 13.0]], [[12.0, 3.0], [5.0, 20.0], [30.0, 1.0]]])
    assert torch.allclose(sample_descriptors(feats, uv, (24, 32)), sample_descriptors(full, uv), atol=1e-6)


def _pair(M=6, D=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    desc_a = torch.randn(1, D, 8, 8, generator=g)
    uv = torch.stack([torch.arange(M, dtype=torch.float32), torch.arange(M, dtype=torch.float32)], -1)[None]
    return desc_a, desc_a.clone(), uv, uv.clone(), torch.ones(1, M, dtype=torch.bool)


def test_off_object_negatives_change_the_loss_and_invalid_ones_do_not():
    desc_a, desc_b, uv_a, uv_b, valid = _pair()
    base = ntxent_loss(desc_a, desc_b, uv_a, uv_b, valid, 0.1)
    # a negative pixel whose descriptor equals an anchor's partner: strongly confusable, raises the loss
    neg_uv = torch.tensor([[[7.0, 0.0], [0.0, 7.0]]])
    desc_b2 = desc_b.clone()
    desc_b2[0, :, 0, 7] = desc_b[0, :, 2, 2]
    with_neg = ntxent_loss(desc_a, desc_b2, uv_a, uv_b, valid, 0.1, neg_uv_b=neg_uv, neg_valid_b=torch.ones(1, 2, dtype=torch.bool),
                           neg_uv_a=neg_uv, neg_valid_a=torch.ones(1, 2, dtype=torch.bool))
    assert with_neg > base + 0.05
    off = ntxent_loss(desc_a, desc_b2, uv_a, uv_b, valid, 0.1, neg_uv_b=neg_uv, neg_valid_b=torch.zeros(1, 2, dtype=torch.bool),
                      neg_uv_a=neg_uv, neg_valid_a=torch.zeros(1, 2, dtype=torch.bool))
    assert torch.allclose(off, base)


def test_hard_negative_mining_keeps_the_most_similar_negatives():
    desc_a, desc_b, uv_a, uv_b, valid = _pair(M=4)
    desc_b = desc_b.clone()
    desc_b[0, :, 7, 0] = desc_b[0, :, 1, 1]          # a confusable negative
    desc_b[0, :, 7, 1] = -desc_b[0, :, 1, 1]         # an easy one
    neg_uv = torch.tensor([[[0.0, 7.0], [1.0, 7.0]]])
    ones = torch.ones(1, 2, dtype=torch.bool)
    kw = dict(neg_uv_b=neg_uv, neg_valid_b=ones, neg_uv_a=neg_uv[:, :0], neg_valid_a=ones[:, :0])
    all_negs = ntxent_loss(desc_a, desc_b, uv_a, uv_b, valid, 0.1, **kw)
    hard = ntxent_loss(desc_a, desc_b, uv_a, uv_b, valid, 0.1, hard_negatives=1, **kw)
    # keeping only the hardest drops the easy negative's (tiny) share, nothing else
    assert hard <= all_negs and torch.allclose(hard, all_negs, atol=1e-3)
    with pytest.raises(ValueError, match="hard_negatives"):
        ntxent_loss(desc_a, desc_b, uv_a, uv_b, valid, 0.1, hard_negatives=-1, **kw)


def test_exclude_px_drops_neighbouring_correspondences_from_the_negatives():
    torch.manual_seed(0)
    desc = torch.randn(1, 4, 8, 8)
    desc[0, :, 0, 1] = desc[0, :, 0, 0]  # two neighbouring pixels share a descriptor (one surface patch)
    uv = torch.tensor([[[0.0, 0.0], [1.0, 0.0], [6.0, 6.0]]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    plain = ntxent_loss(desc, desc.clone(), uv, uv.clone(), valid, 0.1)
    excluded = ntxent_loss(desc, desc.clone(), uv, uv.clone(), valid, 0.1, exclude_px=1.5)
    assert plain > excluded + 0.3  # the identical neighbour no longer competes with the positive
    far_only = ntxent_loss(desc, desc.clone(), uv, uv.clone(), valid, 0.1, exclude_px=0.5)
    assert torch.allclose(far_only, plain)


def test_weights_make_the_loss_a_weighted_mean_over_anchors():
    B, D, H, W, M = 1, 8, 12, 14, 6
    da, db = _random_descriptors(B, D, H, W, 1), _random_descriptors(B, D, H, W, 2)
    uv_a, uv_b = _grid_uv(B, M, H, W, 3), _grid_uv(B, M, H, W, 4)
    valid = torch.ones(B, M, dtype=torch.bool)
    plain = ntxent_loss(da, db, uv_a, uv_b, valid)
    assert ntxent_loss(da, db, uv_a, uv_b, valid, weights=torch.full((B, M), 2.0)).item() == pytest.approx(plain.item())
    only_first = torch.zeros(B, M)
    only_first[0, 0] = 1.0
    a = F.normalize(da[0][:, uv_a[0, :, 1].long(), uv_a[0, :, 0].long()].T, dim=-1)
    b = F.normalize(db[0][:, uv_b[0, :, 1].long(), uv_b[0, :, 0].long()].T, dim=-1)
    s = a @ b.T / 0.1
    first = 0.5 * ((torch.logsumexp(s[0], 0) - s[0, 0]) + (torch.logsumexp(s[:, 0], 0) - s[0, 0]))
    got = ntxent_loss(da, db, uv_a, uv_b, valid, weights=only_first)
    assert got.item() == pytest.approx(first.item(), rel=1e-5) and got.item() != pytest.approx(plain.item())
    with pytest.raises(ValueError, match="weights"):
        ntxent_loss(da, db, uv_a, uv_b, valid, weights=torch.ones(B, M + 1))
