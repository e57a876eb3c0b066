"""The foreground head (model.foreground): its output, its loss, the gate of the live search, and that checkpoints
with and without it load."""
import numpy as np
import pytest
import torch

from dense_descriptor_grasp.model import DenseDescriptorNet, load_model, save_checkpoint
from dense_descriptor_grasp.model.inference import (FOREGROUND_THRESHOLD, descriptor_image, gate_descriptors,
                                                    has_foreground)
from dense_descriptor_grasp.training.config import LossConfig, TrainConfig
from dense_descriptor_grasp.training.objective import compute_losses, foreground_loss


def _net(foreground=True, **kw):
    torch.manual_seed(0)
    return DenseDescriptorNet(descriptor_dim=6, decoder="fpn", output_stride=4, decoder_channels=16,
                              method=kw.pop("method", "ntxent"), num_keypoints=kw.pop("num_keypoints", 0),
                              foreground=foreground, **kw)


def _set_foreground(net, bias: float):
    """A head that answers the same probability sigmoid(bias) everywhere."""
    with torch.no_grad():
        net.foreground_logits.weight.zero_()
        net.foreground_logits.bias.fill_(bias)


def test_foreground_head_outputs_and_config(one_torch_thread):
    net = _net().eval()
    x = torch.rand(2, 3, 48, 64)
    out = net(x)
    assert out["features"].shape == (2, 6, 12, 16) and out["foreground"].shape == (2, 1, 12, 16)
    desc, fg = net.descriptors(x, out_size=(24, 32), with_foreground=True)
    assert desc.shape == (2, 6, 24, 32) and fg.shape == (2, 24, 32)
    assert float(fg.min()) >= 0 and float(fg.max()) <= 1
    # the descriptors are those of the model without with_foreground
    torch.testing.assert_close(desc, net.descriptors(x, out_size=(24, 32)))
    assert net.config["foreground"] is True and has_foreground(net)
    plain = _net(foreground=False)
    assert "foreground" not in plain.config and not has_foreground(plain)
    assert "foreground" not in plain(x)
    assert plain.descriptors(x, with_foreground=True)[1] is None
    with pytest.raises(ValueError, match="foreground"):
        DenseDescriptorNet(foreground="yes")


def test_checkpoints_with_and_without_the_head_round_trip(tmp_path, one_torch_thread):
    for flag in (True, False):
        net = _net(foreground=flag)
        save_checkpoint(tmp_path / f"{flag}.pt", net)
        back = load_model(tmp_path / f"{flag}.pt")
        assert has_foreground(back) is flag
        x = torch.rand(1, 3, 32, 32)
        torch.testing.assert_close(back.descriptors(x), net.eval().descriptors(x))


def test_gate_descriptors_zeroes_exactly_the_pixels_below_the_threshold():
    desc = np.ones((3, 4, 5), np.float32)
    fg = np.linspace(0, 1, 20).reshape(4, 5)
    out = gate_descriptors(desc.copy(), fg, 0.5)
    assert np.array_equal(np.all(out == 0, axis=0), fg < 0.5)
    assert np.all(out[:, fg >= 0.5] == 1)
    np.testing.assert_array_equal(gate_descriptors(desc.copy(), fg, None), desc)
    np.testing.assert_array_equal(gate_descriptors(desc.copy(), fg, 0.0), desc)
    np.testing.assert_array_equal(gate_descriptors(desc.copy(), None, 0.5), desc)
    with pytest.raises(ValueError, match="foreground"):
        gate_descriptors(desc.copy(), fg[:3], 0.5)


def test_descriptor_image_gates_only_when_asked_and_only_models_with_the_head(one_torch_thread):
    rgb = np.random.default_rng(0).integers(0, 256, (32, 48, 3), dtype=np.uint8)
    net = _net().eval()
    d, fg = descriptor_image(net, rgb, with_foreground=True)
    assert fg.shape == (32, 48) and d.shape == (6, 32, 48)
    gated = descriptor_image(net, rgb, foreground_threshold=float(np.median(fg)))
    zero = np.all(gated == 0, axis=0)
    assert np.array_equal(zero, fg < np.median(fg)) and 0 < zero.mean() < 1
    np.testing.assert_allclose(gated[:, ~zero], d[:, ~zero], atol=1e-6)
    np.testing.assert_allclose(descriptor_image(net, rgb), d, atol=1e-6)   # default: ungated (a reference)
    plain = _net(foreground=False).eval()
    np.testing.assert_allclose(descriptor_image(plain, rgb, foreground_threshold=0.9), descriptor_image(plain, rgb))
    assert descriptor_image(plain, rgb, with_foreground=True)[1] is None


def test_foreground_loss_rewards_the_target_mask_and_trains_the_head(make_pair_batch, one_torch_thread):
    mask = torch.zeros(1, 16, 16, dtype=torch.bool)
    mask[:, 4:12, 4:12] = True
    right = torch.where(mask, 5.0, -5.0)[:, None, ::4, ::4].contiguous()   # stride-4 logits of the mask
    assert foreground_loss(right, mask) < foreground_loss(-right, mask) - 1
    assert foreground_loss(right, mask) < foreground_loss(torch.zeros_like(right), mask)
    for method, kp in (("ntxent", 0), ("keypoint", 4)):
        net = _net(method=method, num_keypoints=kp)
        batch = make_pair_batch(batch_size=1, H=64, W=64)
        terms = compute_losses(net, batch, LossConfig(foreground=2.0))
        assert "foreground" in terms and torch.isfinite(terms["foreground"])
        without = compute_losses(_net(foreground=False, method=method, num_keypoints=kp), batch, LossConfig())
        torch.testing.assert_close(terms["total"] - 2.0 * terms["foreground"], without["total"])
        terms["foreground"].backward()
        assert net.foreground_logits.weight.grad.abs().sum() > 0
        assert net.trunk[0].weight.grad.abs().sum() > 0, "the head's loss also trains the trunk"


def test_config_refuses_a_head_without_its_loss():
    with pytest.raises(ValueError, match="losses.foreground"):
        TrainConfig.from_dict({"model": {"foreground": True}, "losses": {"foreground": 0.0}})
    with pytest.raises(ValueError, match="model.foreground"):
        TrainConfig.from_dict({"model": {"foreground": 1}})
    assert TrainConfig.from_dict({"model": {"foreground": True}}).model.foreground is True


def test_the_descriptor_node_default_is_the_inference_default():
    from dense_descriptor_grasp.nodes.descriptor_node import PARAMETERS

    spec = {s.name: s for s in PARAMETERS}["foreground_threshold"]
    assert spec.default == FOREGROUND_THRESHOLD
