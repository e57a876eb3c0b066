import torch
import torch.nn.functional as F

from dense_descriptor_grasp.model.network import DenseDescriptorNet


def test_inference_descriptors_equal_the_normalised_upsampled_features_in_standard_layout():
    torch.manual_seed(0)
    model = DenseDescriptorNet(descriptor_dim=8, num_keypoints=4).eval()
    rgb = torch.rand(2, 3, 64, 96)
    desc = model.descriptors(rgb)
    with torch.no_grad():
        expected = F.normalize(F.interpolate(model.features(rgb), size=(64, 96), mode="bilinear", align_corners=False), dim=1)
    assert desc.shape == (2, 8, 64, 96) and desc.is_contiguous()
    assert torch.allclose(desc, expected, atol=1e-6)
    raw = model.descriptors(rgb, out_size=(32, 48), normalize=False)
    assert raw.shape == (2, 8, 32, 48) and not torch.allclose(raw.norm(dim=1), torch.ones(2, 32, 48))
