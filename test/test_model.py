"""DenseDescriptorNet: shapes for both methods and every stride, eq. 4, descriptors(), input checks, gradients."""
import math
import pytest
import torch

from dense_descriptor_grasp.model.network import DenseDescriptorNet, spatial_expectation
from dense_descriptor_grasp.training.config import LossConfig
from dense_descriptor_grasp.training.objective import compute_losses


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def keypoint_net():
    torch.manual_seed(0)
    return DenseDescriptorNet(descriptor_dim=8, num_keypoints=5)


def test_keypoint_forward_shapes_and_expected_pixels(keypoint_net):
    rgb = torch.rand(2, 3, 64, 96)
    out = keypoint_net(rgb)
    assert out["uv"].shape == (2, 5, 2) and out["depth"].shape == (2, 5)
    assert out["prob"].shape == (2, 5, 64, 96) and out["features"].shape == (2, 8, 2, 3)
    # uv is the expected pixel under the full-resolution map prob (pixel centres at integer coordinates)
    prob = out["prob"].detach()
    u = (prob * torch.arange(96.0)).sum(dim=(2, 3))
    v = (prob * torch.arange(64.0)[:, None]).sum(dim=(2, 3))
    assert torch.allclose(out["uv"], torch.stack([u, v], dim=-1), atol=1e-3)
    assert torch.allclose(out["depth"], torch.full_like(out["depth"], 0.5), atol=0.05)  # depth_init


@pytest.mark.parametrize("stride,hw", [(32, (3, 4)), (16, (6, 8)), (8, (12, 16))])
def test_output_strides(stride, hw):
    net = DenseDescriptorNet(descriptor_dim=4, num_keypoints=3, output_stride=stride).eval()
    with torch.no_grad():
        assert net.features(torch.rand(1, 3, 96, 128)).shape == (1, 4) + hw


def test_spatial_expectation_eq4_on_a_peaked_map():
    logits = torch.full((1, 2, 4, 4), -30.0)
    logits[0, 0, 1, 2] = 30.0  # cell (row 1, col 2) -> pixel centre ((2 + 0.5) * 8 - 0.5, (1 + 0.5) * 8 - 0.5)
    logits[0, 1] = 0.0  # uniform -> image centre
    depth = torch.stack([torch.full((4, 4), 0.7), torch.arange(16.0).view(4, 4)]).unsqueeze(0)
    uv, d, prob = spatial_expectation(logits, depth, (32, 32))
    assert prob.shape == (1, 2, 32, 32)
    assert torch.allclose(uv[0, 0], torch.tensor([19.5, 11.5]), atol=0.6)
    assert torch.allclose(uv[0, 1], torch.tensor([15.5, 15.5]), atol=1e-4)
    assert d[0, 0].item() == pytest.approx(0.7, abs=1e-5)
    assert d[0, 1].item() == pytest.approx(7.5, abs=1e-3)  # mean of a bilinear upsampling of 0..15


def test_descriptors_shape_norm_and_no_keypoint_heads(keypoint_net):
    calls = []
    hook = keypoint_net.keypoint_logits.register_forward_hook(lambda *a: calls.append(1))
    try:
        keypoint_net.eval()
        rgb = torch.rand(1, 3, 64, 80)
        d = keypoint_net.descriptors(rgb)
        assert d.shape == (1, 8, 64, 80) and not d.requires_grad
        assert torch.allclose(d.norm(dim=1), torch.ones(1, 64, 80), atol=1e-5)
        d2 = keypoint_net.descriptors(rgb, out_size=(32, 40), normalize=False)
        assert d2.shape == (1, 8, 32, 40)
        assert calls == []
        keypoint_net(rgb)
        assert calls == [1]
    finally:
        hook.remove()
        keypoint_net.train()


def test_ntxent_method_returns_low_resolution_features():
    net = DenseDescriptorNet(descriptor_dim=6, num_keypoints=0, method="ntxent")
    out = net(torch.rand(1, 3, 64, 64))
    assert set(out) == {"features"} and out["features"].shape == (1, 6, 2, 2)  # stride 32: never (H, W) in training
    assert net.keypoint_logits is None and not any(k.startswith("keypoint") for k in net.state_dict())


@pytest.mark.parametrize("stride", [2, 4, 8])
def test_fpn_decoder_gives_stride_2_4_or_8_features_from_all_stages(stride):
    torch.manual_seed(0)
    net = DenseDescriptorNet(descriptor_dim=5, num_keypoints=3, output_stride=stride, decoder="fpn",
                             decoder_channels=16)
    rgb = torch.rand(1, 3, 72, 96, requires_grad=False)
    f = net.features(rgb)
    assert f.shape == (1, 5, 72 // stride, 96 // stride)
    out = net(rgb)
    assert out["prob"].shape == (1, 3, 72, 96) and out["features"].shape == f.shape  # heads read decoded features
    out["uv"].sum().backward()
    lateral_grads = [lat.weight.grad for lat in net.decoder.laterals]
    # skip connections from the stem (stride 2) / layer1 (stride 4) / layer2 up
    assert len(lateral_grads) == {2: 5, 4: 4, 8: 3}[stride]
    assert all(g is not None and g.abs().sum() > 0 for g in lateral_grads)
    d = net.eval().descriptors(rgb)
    assert d.shape == (1, 5, 72, 96) and torch.allclose(d.norm(dim=1), torch.ones(1, 72, 96), atol=1e-5)
    assert net.config["decoder"] == "fpn" and net.config["output_stride"] == stride


def test_decoder_none_keeps_the_old_config_and_strides_are_checked_per_decoder():
    net = DenseDescriptorNet(descriptor_dim=4, num_keypoints=3, output_stride=32)
    assert "decoder" not in net.config  # old checkpoints keep their identity
    with pytest.raises(ValueError, match="output_stride"):
        DenseDescriptorNet(output_stride=4, decoder="none")
    with pytest.raises(ValueError, match="output_stride"):
        DenseDescriptorNet(output_stride=16, decoder="fpn")
    with pytest.raises(ValueError, match="decoder"):
        DenseDescriptorNet(decoder="unet")


def test_bad_inputs_and_arguments_raise_clear_errors(keypoint_net):
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        keypoint_net(torch.rand(1, 4, 64, 64))
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        keypoint_net(torch.rand(3, 64, 64))
    with pytest.raises(ValueError, match="float"):
        keypoint_net(torch.zeros(1, 3, 64, 64, dtype=torch.uint8))
    with pytest.raises(ValueError, match="output stride"):
        keypoint_net(torch.rand(1, 3, 16, 64))
    with pytest.raises(ValueError, match="descriptor_dim"):
        DenseDescriptorNet(descriptor_dim=2)
    with pytest.raises(ValueError, match="descriptor_dim"):
        DenseDescriptorNet(descriptor_dim=513)
    with pytest.raises(ValueError, match="output_stride"):
        DenseDescriptorNet(output_stride=4)
    with pytest.raises(ValueError, match="method"):
        DenseDescriptorNet(method="contrastive")


def test_keypoint_losses_reach_trunk_and_projection(make_pair_batch):
    torch.manual_seed(0)
    net = DenseDescriptorNet(descriptor_dim=8, num_keypoints=4, output_stride=16)
    batch = make_pair_batch(batch_size=1, H=64, W=64)
    terms = compute_losses(net, batch, LossConfig())
    assert set(terms) >= {"silhouette", "variance", "separation", "multiview", "pose", "total"}
    for name in ("silhouette", "multiview", "pose"):
        net.zero_grad()
        terms = compute_losses(net, batch, LossConfig())
        terms[name].backward()
        conv1 = net.trunk[0].weight.grad
        assert conv1 is not None and torch.isfinite(conv1).all() and conv1.abs().sum() > 0, name
        assert net.projection.weight.grad.abs().sum() > 0, name


def test_weights_path_loads_a_local_resnet34_state_dict(tmp_path):
    from torchvision.models import resnet34

    torch.manual_seed(3)
    ref = resnet34(weights=None)
    path = tmp_path / "resnet34.pth"
    torch.save(ref.state_dict(), path)
    net = DenseDescriptorNet(descriptor_dim=4, num_keypoints=3, weights_path=str(path))
    assert torch.equal(net.trunk[0].weight, ref.conv1.weight)
    assert torch.equal(net.trunk[7][2].conv2.weight, ref.layer4[2].conv2.weight)
    with pytest.raises(FileNotFoundError, match="weights_path"):
        DenseDescriptorNet(weights_path=str(tmp_path / "missing.pth"))
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="weights_path"):
        DenseDescriptorNet(weights_path=str(tmp_path / "bad.pth"))


def test_geometry_channels_normals_relative_depth_and_missing_depth():
    from dense_descriptor_grasp.model.network import geometry_channels

    depth = torch.full((1, 30, 40), 0.5)
    depth[0, 10:20, 10:20] = 0.4            # a box nearer than the floor
    depth[0, 25, 30] = 0.0                   # one missing pixel
    K = torch.tensor([[50.0, 0, 19.5], [0, 50.0, 14.5], [0, 0, 1]])
    g = geometry_channels(depth, K)
    assert g.shape == (1, 4, 30, 40)
    # fronto-parallel surfaces face the camera: (0, 0, -1)
    assert torch.allclose(g[0, :3, 5, 5], torch.tensor([0.0, 0.0, -1.0]), atol=1e-5)
    assert torch.allclose(g[0, :3, 15, 15], torch.tensor([0.0, 0.0, -1.0]), atol=1e-5)
    # relative depth: log(z / median z), the floor is the median
    assert abs(float(g[0, 3, 5, 5])) < 1e-6 and abs(float(g[0, 3, 15, 15]) - math.log(0.4 / 0.5)) < 1e-5
    assert torch.all(g[0, :, 25, 30] == 0)   # missing depth: every channel 0
    assert torch.all(g[0, :3, 10, 12] == 0)  # the box's edge: a depth jump, no normal
    with pytest.raises(ValueError, match="K must be"):
        geometry_channels(depth, torch.eye(4))


def test_depth_input_keeps_the_rgb_weights_of_the_first_convolution():
    from dense_descriptor_grasp.model.network import _widen_first_conv

    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 8, 7, 2, 3, bias=False)
    wide = _widen_first_conv(conv, 7)
    assert wide.weight.shape == (8, 7, 7, 7) and torch.equal(wide.weight[:, :3], conv.weight)
    assert wide.weight[:, 3:].abs().sum() > 0
    net = DenseDescriptorNet(descriptor_dim=4, num_keypoints=2, output_stride=8, input="rgbd")
    assert net.trunk[0].in_channels == 7
    with pytest.raises(ValueError, match="input must be"):
        DenseDescriptorNet(descriptor_dim=4, num_keypoints=2, output_stride=8, input="depth")
    with pytest.raises(ValueError, match="reads depth"):
        net.features(torch.rand(1, 3, 32, 32))


def test_the_stride_2_option_keeps_stride_4_checkpoints_loading():
    """Adding the stem to the pyramid must not rename the stride-4 decoder's weights (old checkpoints load)."""
    net4 = DenseDescriptorNet(descriptor_dim=4, method="ntxent", output_stride=4, decoder="fpn", decoder_channels=8)
    keys = [k for k in net4.state_dict() if k.startswith("decoder.")]
    assert "decoder.laterals.0.weight" in keys and net4.decoder.laterals[0].weight.shape[1] == 64   # layer1
    assert net4.decoder.laterals[3].weight.shape[1] == 512 and len(net4.decoder.laterals) == 4
    net2 = DenseDescriptorNet(descriptor_dim=4, method="ntxent", output_stride=2, decoder="fpn", decoder_channels=8)
    assert len(net2.decoder.laterals) == 5 and net2.features(torch.rand(1, 3, 32, 48)).shape == (1, 4, 16, 24)


def test_image_norm_statistics_normalise_each_image_by_itself_at_inference(tmp_path):
    """norm_statistics="image": in eval() mode every BatchNorm uses the image's own statistics (what training with
    batch statistics sees), image by image, without touching the running averages; "running" is PyTorch's
    default and keeps the old config; the setting travels with the checkpoint."""
    from dense_descriptor_grasp.model.checkpoint import load_model, model_identity, save_checkpoint

    torch.manual_seed(0)
    kw = dict(descriptor_dim=8, num_keypoints=0, output_stride=4, method="ntxent", decoder="fpn")
    running = DenseDescriptorNet(**kw).eval()
    image = DenseDescriptorNet(**kw, norm_statistics="image")
    image.load_state_dict(running.state_dict())
    image.eval()
    assert "norm_statistics" not in running.config and image.config["norm_statistics"] == "image"
    assert model_identity(image) != model_identity(running)
    x = torch.rand(2, 3, 64, 96, generator=torch.Generator().manual_seed(1))
    x[1] = x[1] * 0.3 + 0.6                          # a brighter, flatter second image
    before = {k: v.clone() for k, v in image.state_dict().items()}
    with torch.no_grad():
        both = image.features(x)
        alone = [image.features(x[i:i + 1]) for i in range(2)]
        by_hand = []
        for i in range(2):                           # the same by hand: BatchNorm in training mode on one image
            twin = DenseDescriptorNet(**kw)
            twin.load_state_dict(running.state_dict())
            twin.eval()
            for m in twin.modules():
                if isinstance(m, torch.nn.BatchNorm2d):
                    m.train()
            by_hand.append(twin.features(x[i:i + 1]))
        plain = running.features(x)
    assert torch.allclose(both, torch.cat(alone), atol=1e-5)
    assert torch.allclose(both, torch.cat(by_hand), atol=1e-5)
    assert not torch.allclose(both, plain, atol=1e-3)
    assert all(torch.equal(v, image.state_dict()[k]) for k, v in before.items() if "num_batches" not in k)
    assert all(not m.training for m in image.modules())  # eval() mode is restored
    image.train()                                        # training mode: the batch's statistics, as always
    assert not torch.allclose(image.features(x), both, atol=1e-4)
    image.eval()
    path = save_checkpoint(tmp_path / "m.pt", image)
    loaded = load_model(path)
    assert loaded.norm_statistics == "image"
    with torch.no_grad():
        assert torch.allclose(loaded.features(x), both, atol=1e-5)
    with pytest.raises(ValueError, match="norm_statistics"):
        DenseDescriptorNet(**kw, norm_statistics="group")
