import pytest
import torch

from dense_descriptor_grasp.training.coords import coordinate_embedding, coordinate_loss


def test_embedding_is_unit_length_and_its_similarity_falls_with_distance():
    x = torch.tensor([[0.0, 0.0, 0.0], [0.002, 0.0, 0.0], [0.01, 0.0, 0.0], [0.05, 0.03, -0.02]])
    e = coordinate_embedding(x, 32, 0.02)
    assert e.shape == (4, 32) and torch.allclose(e.norm(dim=-1), torch.ones(4), atol=1e-6)
    sim = e @ e[0]
    assert sim[1] > 0.99 and sim[1] > sim[2] > sim[3] and sim[3] < 0.5
    assert torch.allclose(coordinate_embedding(x, 32, 0.02), e)  # fixed, not random per call
    assert coordinate_embedding(x, 7, 0.02).shape == (4, 7)
    with pytest.raises(ValueError, match="sigma"):
        coordinate_embedding(x, 32, 0.0)


def test_loss_is_zero_for_descriptors_equal_to_the_embedding_and_ignores_unknown_points():
    H, W, D = 6, 8, 16
    uv = torch.tensor([[[1.0, 1.0], [5.0, 3.0], [7.0, 5.0]]])
    xyz = torch.tensor([[[0.0, 0.01, 0.0], [0.03, 0.0, 0.01], [float("nan")] * 3]])
    valid = torch.ones(1, 3, dtype=torch.bool)
    desc = torch.randn(1, D, H, W)
    e = coordinate_embedding(torch.nan_to_num(xyz), D, 0.02)[0]
    for k in range(2):
        u, v = int(uv[0, k, 0]), int(uv[0, k, 1])
        desc[0, :, v, u] = 3.0 * e[k]  # any length: the loss compares directions
    assert coordinate_loss(desc, desc, uv, uv, xyz, valid, 0.02) < 1e-5
    random_desc = torch.randn(1, D, H, W)
    assert coordinate_loss(random_desc, random_desc, uv, uv, xyz, valid, 0.02) > 0.2
    none_known = torch.full_like(xyz, float("nan"))
    assert coordinate_loss(random_desc, random_desc, uv, uv, none_known, valid, 0.02) == 0
