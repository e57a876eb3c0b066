"""The one inference path (model/inference.py): descriptor_image, descriptors_at, and that make_reference, the
descriptor node and the grasp benchmark's model predictor all produce the same arrays through it."""
import types

import numpy as np
import pytest
import torch

from nodes_harness import write_tiny_checkpoint

from dense_descriptor_grasp.model import DenseDescriptorNet, load_model
from dense_descriptor_grasp.model.inference import descriptor_image, descriptors_at

H, W = 48, 64   # the test image: 64x48


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, one_torch_thread):
    """(checkpoint path, model loaded from it, a 64x48 RGB image)."""
    path = write_tiny_checkpoint(tmp_path_factory.mktemp("inference") / "tiny.pt", descriptor_dim=6)
    rgb = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    return path, load_model(path), rgb


def test_descriptor_image_is_model_descriptors_of_the_resized_input(tiny):
    _, model, rgb = tiny
    x = torch.from_numpy(rgb).permute(2, 0, 1).float().div(255.0)[None]
    resized = torch.nn.functional.interpolate(x, size=(32, 40), mode="bilinear", align_corners=False, antialias=True)
    with torch.inference_mode():
        expected = model.descriptors(resized, out_size=(24, 30), normalize=True)[0].numpy()
        raw = model.descriptors(resized, out_size=(24, 30), normalize=False)[0].numpy()
        full = model.descriptors(x, normalize=True)[0].numpy()
    got = descriptor_image(model, rgb, input_size=(32, 40), output_size=(24, 30))
    assert got.shape == (6, 24, 30) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-6)
    np.testing.assert_allclose(descriptor_image(model, rgb, (32, 40), (24, 30), normalize=False), raw, atol=1e-6)
    # defaults: the network sees the image as it is, descriptors at the image size
    np.testing.assert_allclose(descriptor_image(model, rgb), full, atol=1e-6)
    # the resize matters (guards against an input_size that is silently ignored)
    assert np.abs(descriptor_image(model, rgb, output_size=(24, 30)) - expected).max() > 1e-3


def test_descriptor_image_uses_eval_mode_and_restores_training_mode(one_torch_thread):
    torch.manual_seed(0)
    model = DenseDescriptorNet(descriptor_dim=4, num_keypoints=2, output_stride=8)
    rgb = np.random.default_rng(1).integers(0, 256, (H, W, 3), dtype=np.uint8)
    evaluated = descriptor_image(model.eval(), rgb)
    model.train()
    np.testing.assert_array_equal(descriptor_image(model, rgb), evaluated)   # BatchNorm running statistics
    assert model.training


def test_descriptor_image_refuses_non_rgb_uint8(tiny):
    _, model, rgb = tiny
    with pytest.raises(ValueError, match="uint8"):
        descriptor_image(model, rgb.astype(np.float32))
    with pytest.raises(ValueError, match="uint8"):
        descriptor_image(model, rgb[:, :, :2])


def test_descriptors_at_is_nearest_pixel_and_clips():
    D_, H_, W_ = 3, 5, 7
    desc = np.arange(D_ * H_ * W_, dtype=np.float32).reshape(D_, H_, W_)
    uv = np.array([[1.4, 2.6],      # -> column 1, row 3
                   [5.6, 0.2],      # -> column 6, row 0
                   [-3.0, 1.0],     # left of the image -> column 0
                   [40.0, 99.0],    # right of and below the image -> the corner
                   [3.0, -0.6]])    # above -> row 0
    got = descriptors_at(desc, uv)
    expected = np.stack([desc[:, 3, 1], desc[:, 0, 6], desc[:, 1, 0], desc[:, H_ - 1, W_ - 1], desc[:, 0, 3]])
    assert got.shape == (5, D_) and got.dtype == np.float32
    np.testing.assert_array_equal(got, expected)
    # no interpolation: a pixel between centres gives its nearest pixel's value, never a mixture
    assert descriptors_at(desc, [(2.4, 1.0)])[0].tolist() == desc[:, 1, 2].tolist()
    with pytest.raises(ValueError, match="finite"):
        descriptors_at(desc, [(np.nan, 1.0)])
    with pytest.raises(ValueError, match=r"\(D, H, W\)"):
        descriptors_at(desc[0], [(1.0, 1.0)])


@pytest.mark.parametrize("network_input", ["rgb", "rgbd"])
def test_make_reference_descriptor_node_and_benchmark_agree(tiny, tmp_path, network_input):
    """The three callers give identical arrays for the same model and image, at sub-pixel reference pixels; a
    depth-input model gets the same depth and K from each of them."""
    pytest.importorskip("rclpy")
    from benchmarks.grasp_sim import ModelPredictor
    from dense_descriptor_grasp.grasping.make_reference import build_reference
    from dense_descriptor_grasp.nodes.descriptor_node import DescriptorNode
    from nodes_harness import ros_graph

    path, model, rgb = tiny
    if network_input == "rgbd":
        path = write_tiny_checkpoint(tmp_path / "tiny_rgbd.pt", descriptor_dim=6, input="rgbd")
        model = load_model(path)
    depth = np.full((H, W), 0.5, np.float32)
    depth[10:30, 20:40] = 0.45 + 0.002 * np.arange(20)[None, :]   # a tilted box nearer than the floor
    K = np.array([[80.0, 0, 31.5], [0, 80.0, 23.5], [0, 0, 1]])
    pixels = np.array([[10.4, 20.7], [33.0, 12.0], [50.6, 40.3], [0.2, 47.0]])
    full = descriptor_image(model, rgb, depth=depth, K=K)
    nearest = full[:, np.rint(pixels[:, 1]).astype(int), np.rint(pixels[:, 0]).astype(int)].T

    # make_reference (what the demo and node_pipeline ship)
    ref = build_reference(load_model(path), rgb, depth, K, pixels)
    np.testing.assert_array_equal(ref.descriptors, nearest)

    # the descriptor node's compute function, on a real node
    with ros_graph(offset=13) as g:
        node = g.add(DescriptorNode, {"model_path": str(path), "num_threads": 0})
        node_desc = node.compute_descriptors(rgb, (H, W), (H, W), depth, K)
        node_resized = node.compute_descriptors(rgb, (32, 40), (H, W), depth, K)
    np.testing.assert_array_equal(node_desc, full)
    np.testing.assert_array_equal(descriptors_at(node_desc, pixels), nearest)
    ref_resized = build_reference(load_model(path), rgb, depth, K, pixels, input_size=(32, 40))
    np.testing.assert_array_equal(descriptors_at(node_resized, pixels), ref_resized.descriptors)

    # the grasp benchmark's model predictor (its descriptor image and its reference sampling)
    predictor = ModelPredictor.__new__(ModelPredictor)
    predictor.model, predictor.device = load_model(path), "cpu"
    bench_desc = predictor.descriptors(types.SimpleNamespace(rgb=rgb, depth=depth, K=K))
    np.testing.assert_array_equal(bench_desc, node_desc)
    bench_ref = np.stack([predictor.reference_descriptor(bench_desc, u, v, None) for u, v in pixels])
    np.testing.assert_array_equal(bench_ref, ref.descriptors)


def test_depth_input_model_reads_depth_and_refuses_without_it(tmp_path, one_torch_thread):
    """input 'rgbd': the descriptors change with the depth image, and a call without depth names what is missing."""
    path = write_tiny_checkpoint(tmp_path / "rgbd.pt", descriptor_dim=6, input="rgbd")
    model = load_model(path)
    assert model.input == "rgbd" and model.config["input"] == "rgbd"
    rgb = np.random.default_rng(3).integers(0, 256, (H, W, 3), dtype=np.uint8)
    K = np.array([[80.0, 0, 31.5], [0, 80.0, 23.5], [0, 0, 1]])
    flat = np.full((H, W), 0.5, np.float32)
    box = flat.copy()
    box[10:30, 20:40] = 0.4
    a = descriptor_image(model, rgb, depth=flat, K=K)
    b = descriptor_image(model, rgb, depth=box, K=K)
    assert np.abs(a - b).max() > 1e-3
    with pytest.raises(ValueError, match="depth"):
        descriptor_image(model, rgb)
    with pytest.raises(ValueError, match="size"):
        descriptor_image(model, rgb, depth=flat[:, :10], K=K)
    # an RGB model ignores depth
    rgb_model = DenseDescriptorNet(descriptor_dim=4, num_keypoints=2, output_stride=8).eval()
    np.testing.assert_array_equal(descriptor_image(rgb_model, rgb, depth=box, K=K), descriptor_image(rgb_model, rgb))
