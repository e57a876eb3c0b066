import pytest
import torch

from dense_descriptor_grasp.training.coords import coordinate_embedding, coordinate_loss, surface_balance_weights


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


def test_surface_balance_weights_give_each_voxel_of_the_object_the_same_total():
    nan = float("nan")
    # pair 0: three points in one 1-cm cube, one alone, one invalid; pair 1: no object points at all
    xyz = torch.tensor([[[0.0, 0.0, 0.0], [0.002, 0.0, 0.0], [0.004, 0.001, 0.0], [0.05, 0.0, 0.0], [0.0] * 3],
                        [[nan] * 3] * 5])
    valid = torch.tensor([[True, True, True, True, False], [True, True, True, False, False]])
    w = surface_balance_weights(xyz, valid, 0.01)
    assert w.shape == (2, 5)
    assert torch.allclose(w[0, :3], torch.full((3,), 2.0 / 3.0)) and w[0, 3].item() == pytest.approx(2.0)
    assert w[0, 4] == 0 and w[1, 3:].eq(0).all()
    assert torch.allclose(w[1, :3], torch.ones(3))          # unknown points: one bin, so plain weight 1
    assert w[0, :4].mean().item() == pytest.approx(1.0)
    # a coarser cube puts all four in one bin: every weight 1
    assert torch.allclose(surface_balance_weights(xyz, valid, 0.1)[0, :4], torch.ones(4))
    with pytest.raises(ValueError, match="voxel"):
        surface_balance_weights(xyz, valid, 0.0)


def test_coordinate_loss_weights_move_the_mean_towards_the_heavier_correspondence():
    H, W, D = 6, 8, 16
    uv = torch.tensor([[[1.0, 1.0], [5.0, 3.0]]])
    xyz = torch.tensor([[[0.0, 0.01, 0.0], [0.03, 0.0, 0.01]]])
    valid = torch.ones(1, 2, dtype=torch.bool)
    desc = torch.randn(1, D, H, W, generator=torch.Generator().manual_seed(0))
    e = coordinate_embedding(xyz, D, 0.02)[0]
    desc[0, :, 1, 1] = e[0]                     # the first fits exactly (loss 0), the second does not
    plain = coordinate_loss(desc, desc, uv, uv, xyz, valid, 0.02)
    second = (1 - torch.nn.functional.normalize(desc[0, :, 3, 5], dim=0) @ e[1]).item()
    assert plain.item() == pytest.approx(second / 2, rel=1e-4)
    heavy_first = coordinate_loss(desc, desc, uv, uv, xyz, valid, 0.02, weights=torch.tensor([[1.5, 0.5]]))
    assert heavy_first.item() == pytest.approx(second / 4, rel=1e-4)


def test_losses_surface_balance_reweights_both_terms_of_the_objective(make_pair_batch):
    from dense_descriptor_grasp.model.network import DenseDescriptorNet
    from dense_descriptor_grasp.training.config import LossConfig
    from dense_descriptor_grasp.training.objective import ntxent_losses

    torch.manual_seed(0)
    model = DenseDescriptorNet(descriptor_dim=4, num_keypoints=0, output_stride=32, method="ntxent").eval()
    batch = make_pair_batch(batch_size=1, H=64, W=64, M=32)
    # object points: half of the correspondences crowd one 1-cm cube, the others are spread out
    xyz = torch.zeros(1, 32, 3)
    xyz[0, 16:, 0] = torch.arange(16) * 0.02
    batch["xyz"] = xyz
    with torch.no_grad():
        plain = ntxent_losses(model, batch, LossConfig(coords=1.0))
        balanced = ntxent_losses(model, batch, LossConfig(coords=1.0, surface_balance=0.01))
        coarse = ntxent_losses(model, batch, LossConfig(coords=1.0, surface_balance=10.0))  # one cube: weights 1
    for term in ("ntxent", "coords"):
        assert balanced[term].item() != pytest.approx(plain[term].item(), rel=1e-4)
        assert coarse[term].item() == pytest.approx(plain[term].item(), rel=1e-5)
    del batch["xyz"]
    with pytest.raises(KeyError, match="surface_balance"):
        ntxent_losses(model, batch, LossConfig(surface_balance=0.01))
    with pytest.raises(ValueError, match="losses.surface_balance"):
        LossConfig(surface_balance=-1.0)


def test_coarse_heads_give_stride_16_and_32_maps_in_training_only_and_round_trip(tmp_path, one_torch_thread):
    """model.coarse_heads: forward() in train() mode adds "coarse" (layer3 / layer4 projected to D); eval() and the
    descriptors are those of the same weights without the heads; the checkpoint records them."""
    from dense_descriptor_grasp.model import DenseDescriptorNet, load_model, save_checkpoint

    torch.manual_seed(0)
    net = DenseDescriptorNet(descriptor_dim=6, num_keypoints=0, method="ntxent", decoder="fpn", output_stride=4,
                             decoder_channels=16, coarse_heads=True)
    x = torch.rand(2, 3, 64, 96)
    out = net.train()(x)
    assert [tuple(c.shape) for c in out["coarse"]] == [(2, 6, 4, 6), (2, 6, 2, 3)]
    assert out["features"].shape == (2, 6, 16, 24)
    assert "coarse" not in net.eval()(x)
    plain = DenseDescriptorNet(descriptor_dim=6, num_keypoints=0, method="ntxent", decoder="fpn", output_stride=4,
                               decoder_channels=16)
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if not k.startswith("coarse_projections")})
    torch.testing.assert_close(net.eval().descriptors(x), plain.eval().descriptors(x))
    assert net.config["coarse_heads"] is True and "coarse_heads" not in plain.config
    save_checkpoint(tmp_path / "c.pt", net)
    back = load_model(tmp_path / "c.pt")
    assert back.coarse_projections is not None
    torch.testing.assert_close(back.descriptors(x), net.eval().descriptors(x))
    with pytest.raises(ValueError, match="coarse_heads"):
        DenseDescriptorNet(method="ntxent", num_keypoints=0, coarse_heads=True)          # decoder none


def test_losses_coords_deep_trains_the_coarse_heads_and_needs_them(make_pair_batch, one_torch_thread):
    from dense_descriptor_grasp.model.network import DenseDescriptorNet
    from dense_descriptor_grasp.training.config import LossConfig, TrainConfig
    from dense_descriptor_grasp.training.objective import ntxent_losses

    torch.manual_seed(0)
    model = DenseDescriptorNet(descriptor_dim=4, num_keypoints=0, method="ntxent", decoder="fpn", output_stride=4,
                               decoder_channels=16, coarse_heads=True).train()
    batch = make_pair_batch(batch_size=1, H=64, W=64, M=32)
    batch["xyz"] = torch.rand(1, 32, 3) * 0.08
    without = ntxent_losses(model, batch, LossConfig(coords=1.0))
    assert "coords_deep" not in without
    terms = ntxent_losses(model, batch, LossConfig(coords=1.0, coords_deep=0.5))
    assert 0.0 < terms["coords_deep"].item() <= 2.0
    assert terms["total"].item() == pytest.approx(
        (terms["ntxent"] + terms["coords"] + 0.5 * terms["coords_deep"]).item(), rel=1e-5)
    terms["coords_deep"].backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.coarse_projections.parameters())
    assert model.projection.weight.grad is None          # the term reads the coarse heads only
    plain = DenseDescriptorNet(descriptor_dim=4, num_keypoints=0, method="ntxent", decoder="fpn", output_stride=4,
                               decoder_channels=16).train()
    with pytest.raises(KeyError, match="coarse_heads"):
        ntxent_losses(plain, batch, LossConfig(coords_deep=1.0))
    base = {"model": {"method": "ntxent", "num_keypoints": 0, "decoder": "fpn", "output_stride": 4}}
    with pytest.raises(ValueError, match="go together"):
        TrainConfig.from_dict({**base, "losses": {"coords_deep": 1.0}})
    with pytest.raises(ValueError, match="go together"):
        TrainConfig.from_dict({"model": {**base["model"], "coarse_heads": True}})
    cfg = TrainConfig.from_dict({"model": {**base["model"], "coarse_heads": True}, "losses": {"coords_deep": 1.0}})
    assert cfg.model.coarse_heads and cfg.losses.coords_deep == 1.0
