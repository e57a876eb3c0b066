"""capture.fusion: TSDF fusion of a known box on a table, ray-cast depth and masks against the truth."""
import numpy as np
import pytest

from dense_descriptor_grasp.capture import fusion
from dense_descriptor_grasp.capture.frames import Frame
from dense_descriptor_grasp.geometry.rendering import intrinsics_from_fov

W, H = 120, 90


@pytest.fixture(scope="module")
def box_views():
    mesh, obj = fusion.box_on_table_mesh(box_size=(0.08, 0.06, 0.10))
    K = intrinsics_from_fov(50.0, W, H)
    truth = fusion.orbit_poses([0.0, 0.0, 0.05], 0.4, 45.0, 12)
    return fusion.render_mesh_frames(mesh, obj, K, truth, W, H)


def _iou(a, b):
    return (a & b).sum() / max((a | b).sum(), 1)


def test_camera_rays_give_depth_along_the_optical_axis():
    K = intrinsics_from_fov(60.0, 8, 6)
    T = np.eye(4)
    T[:3, 3] = [0.1, -0.2, 0.3]
    rays = fusion.camera_rays(K, T, 8, 6)
    assert rays.shape == (6, 8, 6)
    np.testing.assert_allclose(rays[..., :3], np.broadcast_to([0.1, -0.2, 0.3], (6, 8, 3)), atol=1e-7)
    np.testing.assert_allclose(rays[..., 5], 1.0)  # optical-axis component 1: t_hit is the depth
    # a plane z = 1 m in front of the camera has depth 1 everywhere
    import open3d as o3d

    plane = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector([[-5, -5, 1.3], [5, -5, 1.3], [5, 5, 1.3],
                                                                  [-5, 5, 1.3]]),
                                      o3d.utility.Vector3iVector([[0, 1, 2], [0, 2, 3]]))
    depth, tri = fusion.raycast(plane, K, T, 8, 6)
    np.testing.assert_allclose(depth, 1.0, atol=1e-5)
    assert set(np.unique(tri)) <= {0, 1}


def test_fused_exact_depth_matches_the_truth(box_views):
    config = fusion.FusionConfig(voxel=0.004)
    model = fusion.fuse(box_views, config=config)
    assert model.object_triangles.any() and not model.object_triangles.all()
    views = fusion.render_views(model, box_views)
    within, ious = [], []
    for f, (depth, mask) in zip(box_views, views):
        both = (depth > 0) & (f.depth > 0)
        assert both.sum() > 0.9 * (f.depth > 0).sum()  # the fused model covers what the views saw
        err = np.abs(depth - f.depth)[both]
        within.append(np.mean(err <= 2 * config.voxel))
        assert np.median(err) < 0.001
        ious.append(_iou(mask, f.mask))
    assert min(within) > 0.95, within  # misses are at depth edges, where a pixel straddles box and table
    assert np.median(ious) > 0.9 and min(ious) > 0.85, ious
    obj_mesh = model.object_mesh()
    lo, hi = obj_mesh.get_min_bound(), obj_mesh.get_max_bound()
    assert hi[2] == pytest.approx(0.10, abs=2 * config.voxel)  # the box's top
    assert np.all(np.abs(lo[:2]) < 0.07) and np.all(np.abs(hi[:2]) < 0.07)  # not the table


def test_noisy_masks_and_holes_are_repaired_by_the_fusion(box_views):
    rng = np.random.default_rng(0)
    import cv2

    damaged, holes = [], []
    for f in box_views:
        depth = f.depth.copy()
        r, c = int(rng.integers(25, 50)), int(rng.integers(40, 70))
        holes.append((slice(r, r + 12), slice(c, c + 12)))
        depth[holes[-1]] = 0  # a hole (a dark or shiny patch), somewhere on the box or the table near it
        mask = f.mask.copy()
        k = np.ones((3, 3), np.uint8)
        mask = cv2.dilate(mask.astype(np.uint8), k) > 0 if rng.random() < 0.5 else \
            cv2.erode(mask.astype(np.uint8), k) > 0  # a pixel too big or too small
        mask[rng.integers(0, H, 3), rng.integers(0, W, 3)] = True  # specks on the table
        damaged.append(Frame(rgb=f.rgb, depth=depth, K=f.K, name=f.name, T_world_camera=f.T_world_camera,
                             mask=mask))
    model = fusion.fuse(damaged, config=fusion.FusionConfig(voxel=0.004))
    views = fusion.render_views(model, damaged)
    ious_in = [_iou(d.mask, f.mask) for d, f in zip(damaged, box_views)]
    ious_out = [_iou(m, f.mask) for (_, m), f in zip(views, box_views)]
    # at 120x90 the box is ~350 pixels: a one-pixel rim is ~20 % of the IoU
    assert np.median(ious_out) > 0.85 and np.median(ious_out) > np.median(ious_in) + 0.03, (ious_in, ious_out)
    for f, (depth, _), hole in zip(box_views, views, holes):
        truth = f.depth[hole] > 0
        assert (depth[hole][truth] > 0).mean() > 0.97  # filled from the other views
        assert np.median(np.abs(depth[hole] - f.depth[hole])[truth]) < 0.002


def test_surface_far_from_the_object_is_dropped(box_views):
    full = fusion.fuse(box_views[:4], config=fusion.FusionConfig(voxel=0.004, keep_margin=None))
    near = fusion.fuse(box_views[:4], config=fusion.FusionConfig(voxel=0.004, keep_margin=0.05))
    assert len(near.mesh.triangles) < 0.5 * len(full.mesh.triangles)
    assert near.object_triangles.sum() == full.object_triangles.sum()
    (d_full, m_full), = fusion.render_views(full, box_views[:1])
    (d_near, m_near), = fusion.render_views(near, box_views[:1])
    assert (m_full == m_near).all() and np.allclose(d_full[m_full], d_near[m_near])
    assert (d_near > 0).sum() < (d_full > 0).sum()  # the far table is gone


def test_object_only_integration_and_no_masks(box_views):
    model = fusion.fuse(box_views, config=fusion.FusionConfig(voxel=0.004, integrate="object"))
    views = fusion.render_views(model, box_views)
    assert np.median([_iou(m, f.mask) for (_, m), f in zip(views, box_views)]) > 0.85
    partial = [None, None] + [f.mask for f in box_views[2:]]  # views without a mask do not vote
    model = fusion.fuse(box_views, masks=partial, config=fusion.FusionConfig(voxel=0.004))
    views = fusion.render_views(model, box_views)
    assert np.median([_iou(m, f.mask) for (_, m), f in zip(views, box_views)]) > 0.9
    plain = [Frame(rgb=f.rgb, depth=f.depth, K=f.K, name=f.name, T_world_camera=f.T_world_camera)
             for f in box_views]
    model = fusion.fuse(plain[:3])
    assert model.object_triangles.all()  # no masks: everything is object
    # the automatic voxel: 2 pixel footprints at the median depth of all pixels (no masks), in [2, 10] mm
    footprint = np.median([np.median(f.depth[f.depth > 0]) / f.K[0, 0] for f in plain[:3]])
    assert model.voxel == pytest.approx(min(0.01, 2.0 * footprint), abs=1e-5) and model.info["voxel_auto"]
    auto = fusion.FusionConfig().resolved(box_views, [f.mask for f in box_views])
    on_box = np.median([np.median(f.depth[f.mask]) / f.K[0, 0] for f in box_views])
    assert auto.voxel == pytest.approx(np.clip(2.0 * on_box, 0.002, 0.01), abs=1e-5)


def test_fusion_errors_name_the_problem(box_views):
    with pytest.raises(fusion.FusionError, match="no frames"):
        fusion.fuse([])
    bare = [Frame(rgb=f.rgb, depth=f.depth, K=f.K, name=f.name) for f in box_views[:2]]
    with pytest.raises(fusion.FusionError, match="frame 000000 has no camera pose"):
        fusion.fuse(bare)
    with pytest.raises(fusion.FusionError, match="2 frames but 1 poses"):
        fusion.fuse(bare, poses=[np.eye(4)])
    with pytest.raises(fusion.FusionError, match="needs object masks"):
        fusion.fuse(bare, poses=[f.T_world_camera for f in box_views[:2]],
                    config=fusion.FusionConfig(integrate="object"))
    empty = [Frame(rgb=f.rgb, depth=np.zeros_like(f.depth), K=f.K, name=f.name, T_world_camera=f.T_world_camera)
             for f in box_views[:2]]
    with pytest.raises(fusion.FusionError, match="no frame has depth"):
        fusion.fuse(empty)
    with pytest.raises(fusion.FusionError, match="no surface|nothing to extract"):
        fusion.fuse(empty, config=fusion.FusionConfig(voxel=0.004))
    with pytest.raises(ValueError, match="voxel"):
        fusion.FusionConfig(voxel=0)
