"""Rendering: known 3-D points land where rendered, scene sampling (the camera maths: test_geometry_rendering.py)."""

import numpy as np
import pytest
import torch

from dense_descriptor_grasp.data.render import RenderConfig, SceneRenderer, sample_camera, sample_camera_pose, sample_scene
from dense_descriptor_grasp.objects import resolve_object


@pytest.mark.parametrize("name, tol", [("duck", 0.025), ("lego", 0.05)])
def test_rendered_mask_depth_and_pose_agree_with_the_mesh(name, tol):
    """Back-project every mask pixel with depth, K and T_world_camera into the object frame: it must lie on the
    mesh (near a vertex); and mesh vertices projected with K land inside the (1-px dilated) mask."""
    import cv2

    cfg = RenderConfig(width=80, height=64)
    rng = np.random.default_rng(3)
    spec = resolve_object(name)
    cache = {}
    scene = sample_scene(rng, [spec], cfg, cache)
    with SceneRenderer(cfg) as r:
        r.set_scene(scene)
        view = r.render(sample_camera_pose(rng, scene, cfg))
    verts = cache[(spec.path, spec.scale)]
    assert view.mask.sum() > 50
    T_wo = view.object_poses[0][2]
    T_cw = np.linalg.inv(view.T_world_camera)
    Pc = (verts @ T_wo[:3, :3].T + T_wo[:3, 3]) @ T_cw[:3, :3].T + T_cw[:3, 3]
    K = view.K
    uv = Pc[:, :2] / Pc[:, 2:] * [K[0, 0], K[1, 1]] + [K[0, 2], K[1, 2]]
    ui = np.rint(uv).astype(int)
    inside = (ui[:, 0] >= 0) & (ui[:, 0] < 80) & (ui[:, 1] >= 0) & (ui[:, 1] < 64)
    assert inside.all()
    dil = cv2.dilate(view.mask, np.ones((3, 3), np.uint8)) > 0
    assert dil[ui[:, 1], ui[:, 0]].mean() > 0.99
    v, u = np.nonzero(view.mask)
    z = view.depth[v, u].astype(np.float64)
    assert (z > 0).all()
    Xc = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], axis=-1)
    T_oc = np.linalg.inv(T_wo) @ view.T_world_camera
    Xo = Xc @ T_oc[:3, :3].T + T_oc[:3, 3]
    local = verts  # vertices in the object frame
    dist = torch.cdist(torch.from_numpy(Xo), torch.from_numpy(local)).min(dim=1).values.numpy()
    extent = np.linalg.norm(local.max(0) - local.min(0))
    # duck: dense mesh, ~1 % of its size; lego: sparse vertices on flat faces. One pixel is ~3 % here.
    assert np.median(dist) < tol * extent, (np.median(dist), extent)


def test_resolve_object_errors_name_the_object(tmp_path):
    with pytest.raises(ValueError, match="no_such_thing"):
        resolve_object("no_such_thing")
    with pytest.raises(ValueError, match="missing.urdf"):
        resolve_object(str(tmp_path / "missing.urdf"))
    assert resolve_object("random_urdfs/007").path.endswith("007.urdf")


def test_render_config_rejects_bad_values():
    with pytest.raises(ValueError, match="near"):
        RenderConfig(near=1.0, far=0.5)
    with pytest.raises(ValueError, match="background_dir"):
        RenderConfig(backgrounds=("images",))


def test_numpy_quaternion_helpers_agree_with_the_geometry_core():
    from dense_descriptor_grasp.data.render import matrix_to_quaternion_np, quaternion_to_matrix_np
    from dense_descriptor_grasp.geometry.se3 import matrix_from_quaternion, quaternion_from_matrix

    rng = np.random.default_rng(0)
    quats = rng.normal(size=(200, 4))
    quats[:4] = [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]]  # each branch of Shepperd's method
    quats /= np.linalg.norm(quats, axis=1, keepdims=True)
    for q in quats:
        R = matrix_from_quaternion(q)
        assert np.allclose(quaternion_to_matrix_np(q), R, atol=1e-9)
        assert np.allclose(matrix_to_quaternion_np(R), quaternion_from_matrix(R), atol=1e-9)


@pytest.mark.parametrize("name", ["jenga", "random_urdfs/007", "soccerball", "torus"])
def test_rescaled_distractor_pose_and_scale_match_its_pixels(name):
    """A distractor's recorded pose and scale (the camera JSON's T_world_object, scale) put its mesh onto its own
    mask pixels: vertices in front of everything land on its mask value (1-px dilated), at the rendered depth."""
    import dataclasses

    import cv2

    from dense_descriptor_grasp.data.render import _object_vertices_local

    cfg = RenderConfig.training(width=96, height=72)
    rng = np.random.default_rng(4)
    cache = {}
    scene = sample_scene(rng, [resolve_object("duck")], cfg, cache, None, [resolve_object(name)])
    target, obj = scene.objects
    assert obj.role == "distractor" and obj.mask_value == 2
    verts = _object_vertices_local(obj.spec, cache)
    assert cfg.distractor_size[0] - 1e-9 <= np.ptp(verts, axis=0).max() <= cfg.distractor_size[1] + 1e-9
    pts = verts @ obj.T_world_object[:3, :3].T + obj.T_world_object[:3, 3]
    centre = 0.5 * (pts.min(0) + pts.max(0))
    framed = dataclasses.replace(scene, center=centre, radius=float(np.linalg.norm(pts - centre, axis=1).max()))
    with SceneRenderer(cfg) as r:
        r.set_scene(framed)
        T, fov = sample_camera(rng, framed, dataclasses.replace(cfg, camera_spans=dataclasses.replace(
            cfg.camera_spans, distance_factor=(1.5, 1.5), look_at_offset=0.0)))
        view = r.render(T, fov)
    assert view.object_poses[1][0] == name and np.allclose(view.object_poses[1][2], obj.T_world_object, atol=1e-9)
    T_cw = np.linalg.inv(view.T_world_camera)
    Pc = pts @ T_cw[:3, :3].T + T_cw[:3, 3]
    uv = Pc[:, :2] / Pc[:, 2:] * [view.K[0, 0], view.K[1, 1]] + view.K[:2, 2]
    ui = np.rint(uv).astype(int)
    inside = (ui[:, 0] >= 0) & (ui[:, 0] < 96) & (ui[:, 1] >= 0) & (ui[:, 1] < 72)
    assert inside.all()
    own = cv2.dilate((view.mask == 2).astype(np.uint8), np.ones((3, 3), np.uint8)) > 0
    depth = view.depth[ui[:, 1], ui[:, 0]]
    front = np.abs(depth - Pc[:, 2]) < 0.01 * Pc[:, 2] + 0.002   # visible vertices (not behind the duck etc.)
    assert front.mean() > 0.2
    assert own[ui[front, 1], ui[front, 0]].mean() > 0.97
    assert (view.mask == 2).sum() > 30
