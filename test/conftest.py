"""Fixtures shared by several test modules: one torch thread, synthetic pair batches, and a tiny rendered clutter set
with an untrained checkpoint (``tiny_clutter_and_checkpoint``, for the scripts around the semantic evaluation).

``make_pair_batch`` (a factory fixture): pair batches that follow the pair contract of docs/ARCHITECTURE.md, for the
model / loss / training tests. A flat textured disc at depth ``z0`` seen by camera A and by camera B, where B is A
rotated about its optical axis by ``theta`` and shifted parallel to the image plane by ``shift`` pixels (at the
disc's depth). Then, exactly, ``uv_b = c + shift + R(theta) (uv_a - c)`` (c = principal point, fx = fy) and
``T_B<-A = [Rz(theta) | (shift * z0 / f, 0)]``; the world is camera A (``T_world_cam_a = I``).
test_train_synthetic_pairs.py checks that the generator is self-consistent (geometry and colours).
"""
from __future__ import annotations

import math

import pytest
import torch

from dense_descriptor_grasp.geometry.se3 import se3_inverse


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread: reproducible reductions and no spinning OpenMP threads on the shared 2-core machine."""
    import torch

    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _texture(px: torch.Tensor, py: torch.Tensor, radius: float) -> torch.Tensor:
    """Colour of the disc at object-plane coordinates (pixels at depth z0): ``(3, H, W)``."""
    r = torch.sqrt(px**2 + py**2) / radius
    a = torch.atan2(py, px)
    return torch.stack([0.5 + 0.5 * torch.cos(a), 0.5 + 0.5 * torch.sin(2 * a + 3 * r), 0.2 + 0.6 * r.clamp(0, 1)])


def _render(H, W, f, theta, shift, radius, z0, z_bg):
    cx, cy = (W - 1) / 2, (H - 1) / 2
    v, u = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32), indexing="ij")
    # invert uv = c + shift + R (p)  ->  p = R^T (uv - c - shift)
    du, dv = u - cx - shift[0], v - cy - shift[1]
    c, s = math.cos(theta), math.sin(theta)
    px, py = c * du + s * dv, -s * du + c * dv
    mask = (px**2 + py**2) <= radius**2
    bg = torch.stack([0.3 + 0.1 * torch.sin(u / 5.0), 0.3 + 0.1 * torch.cos(v / 7.0), 0.3 * torch.ones_like(u)])
    rgb = torch.where(mask.unsqueeze(0), _texture(px, py, radius), bg)
    depth = torch.where(mask, torch.full_like(u, z0), torch.full_like(u, z_bg))
    return rgb, depth, mask


def synthetic_pair_batch(
    batch_size: int = 2,
    H: int = 64,
    W: int = 64,
    M: int = 64,
    thetas=(0.4, -0.3),
    shifts=((3.0, -2.0), (-4.0, 1.5)),
    radius: float | None = None,
    z0: float = 0.5,
    seed: int = 0,
) -> dict:
    """A pair batch (see the module docstring); sample ``i`` uses ``thetas[i % len]`` and ``shifts[i % len]``."""
    g = torch.Generator().manual_seed(seed)
    radius = radius if radius is not None else 0.3 * min(H, W)
    f = 1.2 * max(H, W)
    cx, cy = (W - 1) / 2, (H - 1) / 2
    K = torch.tensor([[f, 0, cx], [0, f, cy], [0, 0, 1]], dtype=torch.float32)
    out = {k: [] for k in ("rgb_a", "rgb_b", "depth_a", "depth_b", "mask_a", "mask_b", "K_a", "K_b",
                           "T_world_cam_a", "T_world_cam_b", "uv_a", "uv_b", "valid", "fit_residual")}
    for i in range(batch_size):
        theta = float(thetas[i % len(thetas)])
        shift = tuple(float(x) for x in shifts[i % len(shifts)])
        rgb_a, depth_a, mask_a = _render(H, W, f, 0.0, (0.0, 0.0), radius, z0, 2 * z0)
        rgb_b, depth_b, mask_b = _render(H, W, f, theta, shift, radius, z0, 2 * z0)
        # correspondences: random integer pixels of A's disc, mapped exactly into B
        ys, xs = torch.nonzero(mask_a, as_tuple=True)
        pick = torch.randint(len(xs), (M,), generator=g)
        uv_a = torch.stack([xs[pick], ys[pick]], -1).float()
        c, s = math.cos(theta), math.sin(theta)
        R2 = torch.tensor([[c, -s], [s, c]])
        centre = torch.tensor([cx, cy])
        uv_b = centre + torch.tensor(shift) + (uv_a - centre) @ R2.T
        inside = (uv_b[:, 0] >= 0) & (uv_b[:, 0] <= W - 1) & (uv_b[:, 1] >= 0) & (uv_b[:, 1] <= H - 1)
        T_b_a = torch.eye(4)
        T_b_a[:2, :2] = R2
        T_b_a[0, 3], T_b_a[1, 3] = shift[0] * z0 / f, shift[1] * z0 / f
        for k, v in (("rgb_a", rgb_a), ("rgb_b", rgb_b), ("depth_a", depth_a), ("depth_b", depth_b),
                     ("mask_a", mask_a), ("mask_b", mask_b), ("K_a", K), ("K_b", K.clone()),
                     ("T_world_cam_a", torch.eye(4)), ("T_world_cam_b", se3_inverse(T_b_a)),
                     ("uv_a", uv_a), ("uv_b", uv_b), ("valid", inside), ("fit_residual", torch.tensor(0.0))):
            out[k].append(v)
    return {k: torch.stack(v) for k, v in out.items()}


@pytest.fixture
def make_pair_batch():
    """The synthetic pair-batch factory (:func:`synthetic_pair_batch`)."""
    return synthetic_pair_batch


@pytest.fixture
def tiny_clutter_and_checkpoint(tmp_path):
    """``(dataset root, checkpoint path)``: 4 views (2 scenes) of the duck among 2 'eval' distractors at 64x48, and
    ``train_model --steps 0`` on them (D = 8, seeded): enough for the scripts that wrap the semantic evaluation."""
    from dense_descriptor_grasp.data.generate import generate_dataset
    from dense_descriptor_grasp.data.render import RenderConfig
    from dense_descriptor_grasp.training.train import main as train_main

    root = str(tmp_path / "clutter")
    generate_dataset(root, ["duck"], num_views=4, views_per_scene=2, seed=3, distractors=["eval"],
                     distractors_per_scene=(2, 2), config=RenderConfig.training(width=64, height=48), progress=False)
    ckpt = tmp_path / "ckpt"
    assert train_main(["--dataset", root, "--out", str(ckpt), "--descriptor-dim", "8", "--num-keypoints", "4",
                       "--steps", "0", "--set", "data.val_fraction=0.0", "--set", "train.tensorboard=false",
                       "--no-progress"]) == 0
    return root, ckpt / "last.pt"
