"""TSDF fusion of registered RGB-D views, the object's surface, and ray-cast depth and masks per view (open3d).

A sensor's depth has holes (dark or shiny surfaces, edges) and noise that grows with distance; two views' raw
depths then disagree and multi-view correspondences (``data.pairs``: a pixel of A is kept when B's depth at its
projection agrees within ``max(5 mm, 1 % z)``) break exactly where the object is interesting. Fusing every view into
one truncated signed distance volume (Curless & Levoy 1996; open3d's tensor ``VoxelBlockGrid``, CPU) averages the
noise out and fills the holes one view has from the others; ray casting the extracted surface from each camera
gives every view a depth and a mask that agree with each other by construction.

Steps of :func:`fuse`:

1. Integrate every view (colour + depth, up to ``FusionConfig.depth_max``) at its ``T_world_camera`` into a
   ``VoxelBlockGrid`` of ``voxel`` metres (8^3-voxel blocks where the views have depth; ``integrate="scene"``: the
   whole view, so the table is part of the model and hides what it hides; ``integrate="object"``: only the pixels
   of the dilated object masks). ``voxel=None`` picks it from the pixel footprint on the object.
2. Extract the triangle mesh (marching cubes), optionally cropped to a world box.
3. Label the object's triangles by a vote of the views' masks: a mesh vertex is *seen* by a view when it projects
   inside the image and its depth agrees with the mesh's own ray-cast depth there (not hidden); it is *object*
   when at least ``object_vote`` of the views that see it have it inside their mask. A triangle is object when at
   least two of its vertices are; only the largest connected object piece is kept (``keep_largest``). Without
   masks every triangle is object.
4. With masks, keep only the surface within ``keep_margin`` of the object's bounding box (the table around it).

:func:`render_views` ray-casts the mesh (``o3d.t.geometry.RaycastingScene``) from each camera: depth = the first
surface hit (table included in ``"scene"`` mode), mask = hit on an object triangle.

The module also holds a small known scene for tests and measurements without pybullet
(:func:`box_on_table_mesh`, :func:`render_mesh_frames`, :func:`orbit_poses`, :func:`solid_texture`): a textured box
on a textured table, ray-cast exactly.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Optional, Sequence

import numpy as np

from .frames import Frame

__all__ = [
    "FusionConfig", "FusedModel", "FusionError", "fuse", "render_views", "camera_rays", "raycast", "raycast_scene",
    "box_on_table_mesh", "solid_texture", "render_mesh_frames", "orbit_poses",
]

_NO_HIT = np.iinfo(np.uint32).max
# open3d's VoxelBlockGrid reads the depth at the pixel a voxel centre projects to by truncating (u, v) to integers,
# not rounding: half a pixel off, which put the fused table 1.4 mm below its true height (a box on a table seen from
# 0.5 m at 160x120, exact depth). Integrating with the principal point moved by +0.5 px makes the truncation a
# rounding; the bias is then 0.0 +- 0.1 mm (measured the same way).
_PIX_SHIFT = 0.5


class FusionError(ValueError):
    """Fusion cannot run or produced nothing (no views, no surface, no object triangles); the message says why."""


@dataclass
class FusionConfig:
    """Settings of :func:`fuse` (lengths in metres).

    Attributes:
        voxel: TSDF voxel edge in metres, or ``None`` (auto): ``auto_voxel_px`` pixel footprints at the median
            depth of the object (of every pixel without masks), ``median(z) / fx``, clamped to
            ``auto_voxel_range``. On the simulated duck capture (0.3 m, 320x240, fx 257: 1.2 mm per pixel, D435-like
            noise; truncation 5 voxels) the median multi-view correspondence error from the fused model was
            0.65 px with 4 mm voxels, 0.59 px with 3 mm and 0.55 px with 2 mm (fusion + ray casting of 36 views
            10 s, 7 s, 18 s); on the mug (thin walls, truncation 3 voxels) 0.73 px at 2.5 footprints (2.8 mm) and
            0.55 px at 2 (2.2 mm). Auto = 2 footprints, 2.2 mm there.
        auto_voxel_px, auto_voxel_range: the automatic voxel (above).
        sdf_trunc: truncation distance of the signed distance; ``None`` = ``trunc_voxels * voxel``.
        trunc_voxels: the truncation in voxels when ``sdf_trunc`` is ``None``. 3 rather than the usual 5: a
            truncation wider than a thin wall (a mug's, 3-5 mm) lets the views from inside and outside carve each
            other's surface (simulated mug: median correspondence error 0.73 px with 5, 0.55 px with 3, at
            2 pixel-footprint voxels; duck 0.57 -> 0.53 px). It must stay above the depth noise (a D435's
            sigma is 1 % of z at 1 m, ~0.4 voxel there with the automatic voxel).
        depth_max: depth beyond this is not integrated (far background, the sensor's noisiest range).
        integrate: ``"scene"`` (every pixel with depth: table included, so it occludes) or ``"object"`` (only the
            pixels of the object masks, dilated by ``mask_dilate_px``).
        mask_dilate_px: dilation of the masks in ``"object"`` mode (a mask that is a pixel short still integrates
            the object's rim).
        object_vote: share of the views that see a vertex which must have it inside their mask for it to be object.
        visibility_tol: a vertex is seen by a view when its depth is within this of the mesh's ray-cast depth there;
            ``None`` = ``2 * voxel``.
        keep_largest: keep only the largest connected piece of object triangles (a single object on a table).
        min_weight: surface is extracted only where at least this many views' depth was integrated (open3d's
            default 3 leaves holes in faces that 8 views around an object see from 2 of them; raise it against
            spurious surface from single noisy views when there are many views).
        keep_margin: with masks, keep only the surface within this distance of the object's bounding box (a 2 m
            table at 3 mm voxels is a 20 MB mesh; the object and what stands near it are what the views need).
            Ray-cast depth beyond it is 0 (the sensor's depth stays in the dataset's ``depth_raw/``). ``None`` =
            keep everything.
        crop_min, crop_max: optional world box (3 numbers each): mesh vertices outside are removed.
    """

    voxel: Optional[float] = None
    trunc_voxels: float = 3.0
    auto_voxel_px: float = 2.0
    auto_voxel_range: tuple = (0.002, 0.01)
    sdf_trunc: Optional[float] = None
    depth_max: float = 1.5
    integrate: str = "scene"
    mask_dilate_px: int = 2
    object_vote: float = 0.5
    visibility_tol: Optional[float] = None
    keep_largest: bool = True
    min_weight: float = 1.0
    keep_margin: Optional[float] = 0.25
    crop_min: Optional[Sequence[float]] = None
    crop_max: Optional[Sequence[float]] = None

    def __post_init__(self):
        if self.voxel is not None and not self.voxel > 0:
            raise ValueError(f"FusionConfig.voxel must be > 0 metres or None (auto), got {self.voxel}")
        lo, hi = (float(x) for x in self.auto_voxel_range)
        if not (0 < lo <= hi) or not self.auto_voxel_px > 0:
            raise ValueError(f"FusionConfig: need auto_voxel_px > 0 and 0 < auto_voxel_range[0] <= [1], got "
                             f"{self.auto_voxel_px}, {self.auto_voxel_range}")
        self.auto_voxel_range = (lo, hi)
        if self.sdf_trunc is not None and self.voxel is not None and not self.sdf_trunc > self.voxel:
            raise ValueError(f"FusionConfig.sdf_trunc must exceed the voxel ({self.voxel}), got {self.sdf_trunc}")
        if self.integrate not in ("scene", "object"):
            raise ValueError(f"FusionConfig.integrate must be 'scene' or 'object', got {self.integrate!r}")
        if self.keep_margin is not None and not self.keep_margin >= 0:
            raise ValueError(f"FusionConfig.keep_margin must be >= 0 metres or None, got {self.keep_margin}")
        if not self.trunc_voxels > 1.0:
            raise ValueError(f"FusionConfig.trunc_voxels must be > 1, got {self.trunc_voxels}")
        if not self.min_weight > 0:
            raise ValueError(f"FusionConfig.min_weight must be > 0 views, got {self.min_weight}")
        if not 0.0 < self.object_vote <= 1.0:
            raise ValueError(f"FusionConfig.object_vote must be in (0, 1], got {self.object_vote}")
        if not self.depth_max > 0:
            raise ValueError(f"FusionConfig.depth_max must be > 0, got {self.depth_max}")
        if (self.crop_min is None) != (self.crop_max is None):
            raise ValueError("FusionConfig: give both crop_min and crop_max, or neither")

    def resolved(self, frames, masks=None) -> "FusionConfig":
        """This config with ``voxel`` set (the automatic voxel computed from the frames when ``None``)."""
        if self.voxel is not None:
            return self
        from dataclasses import replace as _replace

        ratios = []
        for i, f in enumerate(frames):
            sel = f.depth > 0
            if masks is not None and masks[i] is not None and (masks[i] & sel).any():
                sel = masks[i] & sel
            if sel.any():
                ratios.append(np.median(f.depth[sel]) / f.K[0, 0])
        if not ratios:
            raise FusionError("fuse: no frame has depth (cannot choose a voxel size)")
        lo, hi = self.auto_voxel_range
        voxel = float(np.clip(self.auto_voxel_px * float(np.median(ratios)), lo, hi))
        if self.sdf_trunc is not None:
            voxel = min(voxel, 0.5 * self.sdf_trunc)
        return _replace(self, voxel=round(voxel, 5))

    @property
    def trunc(self) -> float:
        return float(self.sdf_trunc if self.sdf_trunc is not None else self.trunc_voxels * self.voxel)

    @property
    def vis_tol(self) -> float:
        return float(self.visibility_tol if self.visibility_tol is not None else 2.0 * self.voxel)


@dataclass
class FusedModel:
    """The fused surface in the world frame of the poses.

    Attributes:
        mesh: ``open3d.geometry.TriangleMesh`` of everything integrated (with vertex colours).
        object_triangles: (T,) bool, the mesh's triangles that belong to the object.
        voxel: TSDF voxel edge (metres).
        info: diagnostics (vertex / triangle counts, object share, views integrated).
    """

    mesh: object
    object_triangles: np.ndarray
    voxel: float
    info: dict = field(default_factory=dict)

    def object_mesh(self):
        """The object's triangles alone as an ``open3d.geometry.TriangleMesh`` (unreferenced vertices removed)."""
        import copy

        m = copy.deepcopy(self.mesh)
        m.remove_triangles_by_mask(~self.object_triangles)
        m.remove_unreferenced_vertices()
        return m

    def raycasting_scene(self):
        """An ``o3d.t.geometry.RaycastingScene`` holding :attr:`mesh` (primitive ids = triangle indices)."""
        return raycast_scene(self.mesh)


# --------------------------------------------------------------------------------------------------- ray casting
def camera_rays(K: np.ndarray, T_world_camera: np.ndarray, width: int, height: int) -> np.ndarray:
    """``(H, W, 6)`` float32 rays (world origin, world direction) through every pixel centre.

    The direction is ``R (K^-1 [u, v, 1])``: its component along the optical axis is 1, so a ray-cast ``t_hit`` is
    the depth along the optical axis (what a depth image stores), not the distance.
    """
    K = np.asarray(K, dtype=np.float64)
    T = np.asarray(T_world_camera, dtype=np.float64)
    u, v = np.meshgrid(np.arange(width, dtype=np.float64), np.arange(height, dtype=np.float64))
    d_cam = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], axis=-1)
    d_world = d_cam @ T[:3, :3].T
    origin = np.broadcast_to(T[:3, 3], d_world.shape)
    return np.concatenate([origin, d_world], axis=-1).astype(np.float32)


def raycast_scene(mesh):
    """An ``o3d.t.geometry.RaycastingScene`` with one legacy ``TriangleMesh`` (primitive id = triangle index)."""
    import open3d as o3d

    scene = o3d.t.geometry.RaycastingScene()
    scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    return scene


def raycast(scene_or_mesh, K: np.ndarray, T_world_camera: np.ndarray, width: int, height: int):
    """Depth and triangle ids seen by a pinhole camera.

    Args:
        scene_or_mesh: an ``o3d.t.geometry.RaycastingScene`` or a legacy ``open3d.geometry.TriangleMesh``.
        K: (3, 3) intrinsics; T_world_camera: (4, 4) optical-frame pose; width, height: image size.
    Returns:
        depth (H, W) float32 metres along the optical axis (0 = nothing hit), triangle (H, W) int64 (-1 = none).
    """
    import open3d as o3d

    scene = scene_or_mesh
    if not isinstance(scene, o3d.t.geometry.RaycastingScene):
        scene = raycast_scene(scene_or_mesh)
    rays = camera_rays(K, T_world_camera, width, height)
    ans = scene.cast_rays(o3d.core.Tensor(rays))
    t = ans["t_hit"].numpy()
    prim = ans["primitive_ids"].numpy().astype(np.int64)
    hit = np.isfinite(t) & (prim != _NO_HIT)
    depth = np.where(hit, t, 0.0).astype(np.float32)
    tri = np.where(hit, prim, -1)
    return depth, tri


# ------------------------------------------------------------------------------------------------------ fusion
def _poses_of(frames, poses):
    if poses is None:
        poses = [f.T_world_camera for f in frames]
    poses = list(poses)
    if len(poses) != len(frames):
        raise FusionError(f"fuse: {len(frames)} frames but {len(poses)} poses")
    out = []
    for f, T in zip(frames, poses):
        if T is None:
            raise FusionError(f"fuse: frame {f.name} has no camera pose (estimate them with capture.poses)")
        T = np.asarray(T, dtype=np.float64)
        if T.shape != (4, 4) or not np.all(np.isfinite(T)):
            raise FusionError(f"fuse: frame {f.name}: the pose must be a finite 4x4 matrix")
        out.append(T)
    return out


def _masks_of(frames, masks):
    if masks is None:
        masks = [f.mask for f in frames]
    masks = list(masks)
    if len(masks) != len(frames):
        raise FusionError(f"fuse: {len(frames)} frames but {len(masks)} masks")
    if all(m is None for m in masks):
        return None
    out = []
    for f, m in zip(frames, masks):
        if m is None:  # this view does not vote (e.g. its segmentation failed)
            out.append(None)
            continue
        m = np.asarray(m).astype(bool)
        if m.shape != f.depth.shape:
            raise FusionError(f"fuse: frame {f.name}: mask {m.shape} and depth {f.depth.shape} differ in size")
        out.append(m)
    return out


def _dilate(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask
    import cv2

    kernel = np.ones((2 * px + 1, 2 * px + 1), np.uint8)
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _intrinsic(K, width, height):
    import open3d as o3d

    return o3d.camera.PinholeCameraIntrinsic(int(width), int(height), float(K[0, 0]), float(K[1, 1]),
                                             float(K[0, 2]), float(K[1, 2]))


def fuse(frames: Sequence[Frame], poses=None, masks=None, config: FusionConfig = FusionConfig(),
         progress: bool = False) -> FusedModel:
    """Fuse registered RGB-D views into a mesh and label the object's triangles.

    Args:
        frames: the views (:class:`Frame`).
        poses: ``T_world_camera`` (4, 4) per frame; default each frame's own ``T_world_camera``.
        masks: (H, W) bool object mask per frame; default each frame's ``mask``; all ``None`` = no masks (every
            triangle is object); some ``None``: those views do not vote (nor integrate, with ``"object"``).
        config: :class:`FusionConfig`.
        progress: tqdm bars over the views.
    Returns:
        :class:`FusedModel` in the poses' world frame.
    Raises:
        FusionError: no frames, a missing pose, an empty surface or no object triangle left.
    """
    import open3d as o3d
    from tqdm import tqdm

    frames = list(frames)
    if not frames:
        raise FusionError("fuse: no frames")
    poses = _poses_of(frames, poses)
    masks = _masks_of(frames, masks)
    if config.integrate == "object" and masks is None:
        raise FusionError("fuse: integrate='object' needs object masks (frames' mask or the masks argument)")
    auto = config.voxel is None
    config = config.resolved(frames, masks)
    # open3d 0.20's legacy ScalableTSDFVolume extracts nothing here (0 triangles from views that the uniform volume
    # and the tensor VoxelBlockGrid fuse fine), so the tensor VoxelBlockGrid does it; its hash map grows as needed.
    dev = o3d.core.Device("CPU:0")
    vbg = o3d.t.geometry.VoxelBlockGrid(
        attr_names=("tsdf", "weight", "color"), attr_dtypes=(o3d.core.float32, o3d.core.float32, o3d.core.float32),
        attr_channels=((1), (1), (3)), voxel_size=float(config.voxel), block_resolution=8, block_count=1000,
        device=dev)
    trunc_mult = config.trunc / config.voxel
    for i, (f, T) in enumerate(tqdm(list(zip(frames, poses)), desc="fuse (TSDF)", unit="view",
                                    disable=not progress)):
        depth = f.depth
        if config.integrate == "object":
            if masks[i] is None:
                continue
            depth = np.where(_dilate(masks[i], config.mask_dilate_px), depth, 0.0).astype(np.float32)
        if not (depth > 0).any():
            continue
        d_img = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(depth[..., None])))
        c_img = o3d.t.geometry.Image(o3d.core.Tensor(np.ascontiguousarray(f.rgb, dtype=np.float32) / 255.0))
        Kc = f.K.copy(); Kc[0, 2] += _PIX_SHIFT; Kc[1, 2] += _PIX_SHIFT
        intr = o3d.core.Tensor(Kc, o3d.core.float64)
        extr = o3d.core.Tensor(np.linalg.inv(T), o3d.core.float64)
        blocks = vbg.compute_unique_block_coordinates(d_img, intr, extr, 1.0, float(config.depth_max),
                                                      trunc_voxel_multiplier=trunc_mult)
        vbg.integrate(blocks, d_img, c_img, intr, intr, extr, 1.0, float(config.depth_max),
                      trunc_voxel_multiplier=trunc_mult)
    try:
        mesh = vbg.extract_triangle_mesh(weight_threshold=float(config.min_weight)).to_legacy()
    except RuntimeError as exc:  # nothing integrated: open3d refuses an empty grid
        raise FusionError(f"fuse: nothing to extract from the fused volume ({exc})") from exc
    if config.crop_min is not None:
        box = o3d.geometry.AxisAlignedBoundingBox(np.asarray(config.crop_min, float), np.asarray(config.crop_max,
                                                                                                   float))
        mesh = mesh.crop(box)
    mesh.remove_unreferenced_vertices()
    n_tri = len(mesh.triangles)
    if n_tri == 0:
        raise FusionError(f"fuse: the fused volume has no surface ({len(frames)} views, voxel {config.voxel} m, "
                          f"depth_max {config.depth_max} m): are the depths in metres and the poses right?")
    info = {"views": len(frames), "vertices": len(mesh.vertices), "triangles": n_tri, "voxel": config.voxel,
            "integrate": config.integrate, "voxel_auto": auto}
    if masks is None:
        obj = np.ones(n_tri, dtype=bool)
    else:
        obj = _vote_object_triangles(mesh, frames, poses, masks, config, progress)
        if not obj.any():
            raise FusionError("fuse: no triangle of the fused surface lies inside the object masks of the views "
                              "that see it (masks and poses disagree?)")
        if config.keep_margin is not None:
            mesh, obj = _crop_around_object(mesh, obj, float(config.keep_margin))
            info["triangles_kept"] = len(mesh.triangles)
    info["object_triangles"] = int(obj.sum())
    mesh.compute_vertex_normals()
    return FusedModel(mesh=mesh, object_triangles=obj, voxel=float(config.voxel), info=info)


def _vote_object_triangles(mesh, frames, poses, masks, config, progress) -> np.ndarray:
    from tqdm import tqdm

    verts = np.asarray(mesh.vertices, dtype=np.float64)
    tris = np.asarray(mesh.triangles, dtype=np.int64)
    seen = np.zeros(len(verts), np.int32)
    inside = np.zeros(len(verts), np.int32)
    scene = raycast_scene(mesh)
    for f, T, m in tqdm(list(zip(frames, poses, masks)), desc="fuse (object vote)", unit="view",
                        disable=not progress):
        if m is None:
            continue
        depth, _ = raycast(scene, f.K, T, f.width, f.height)
        T_cw = np.linalg.inv(T)
        pc = verts @ T_cw[:3, :3].T + T_cw[:3, 3]
        z = pc[:, 2]
        front = z > 1e-6
        zs = np.where(front, z, 1.0)
        u = np.rint(f.K[0, 0] * pc[:, 0] / zs + f.K[0, 2]).astype(np.int64)
        v = np.rint(f.K[1, 1] * pc[:, 1] / zs + f.K[1, 2]).astype(np.int64)
        ok = front & (u >= 0) & (u < f.width) & (v >= 0) & (v < f.height)
        idx = np.nonzero(ok)[0]
        d = depth[v[idx], u[idx]]
        vis = (d > 0) & (np.abs(d - z[idx]) <= config.vis_tol)
        idx = idx[vis]
        seen[idx] += 1
        inside[idx] += m[v[idx], u[idx]]
    vert_obj = (seen > 0) & (inside >= config.object_vote * np.maximum(seen, 1))
    obj = vert_obj[tris].sum(axis=1) >= 2
    if config.keep_largest and obj.any():
        obj = _largest_component(mesh, obj)
    return obj


def _crop_around_object(mesh, obj: np.ndarray, margin: float):
    """Drop the triangles with no vertex inside the object's bounding box grown by ``margin``; ``obj`` follows."""
    verts = np.asarray(mesh.vertices)
    tris = np.asarray(mesh.triangles)
    ov = verts[np.unique(tris[obj])]
    lo, hi = ov.min(0) - margin, ov.max(0) + margin
    inside = np.all((verts >= lo) & (verts <= hi), axis=1)
    keep = inside[tris].any(axis=1) | obj
    mesh.remove_triangles_by_mask(~keep)  # keeps the order of the remaining triangles
    mesh.remove_unreferenced_vertices()
    return mesh, obj[keep]


def _largest_component(mesh, obj: np.ndarray) -> np.ndarray:
    """Keep only the largest edge-connected piece of the ``obj`` triangles."""
    import copy

    sub = copy.deepcopy(mesh)
    sub.remove_triangles_by_mask(~obj)  # keeps triangle order among the remaining ones
    labels, counts, _ = sub.cluster_connected_triangles()
    labels = np.asarray(labels)
    if len(labels) == 0:
        return obj
    best = int(np.argmax(np.asarray(counts)))
    keep = obj.copy()
    keep[np.nonzero(obj)[0]] = labels == best
    return keep


def render_views(model: FusedModel, frames: Sequence[Frame], poses=None):
    """Ray-cast depth and object mask of every view from the fused model.

    Args:
        model: :class:`FusedModel` (its world is the poses' world).
        frames: the views (their ``K`` and size are used).
        poses: ``T_world_camera`` per frame (default the frames' own).
    Returns:
        list of ``(depth (H, W) float32 metres, 0 = nothing hit; mask (H, W) bool)``, one per frame.
    """
    frames = list(frames)
    poses = _poses_of(frames, poses)
    scene = model.raycasting_scene()
    out = []
    for f, T in zip(frames, poses):
        depth, tri = raycast(scene, f.K, T, f.width, f.height)
        mask = (tri >= 0) & model.object_triangles[np.maximum(tri, 0)]
        out.append((depth, mask))
    return out


# ------------------------------------------------------------------------------------------- a known scene
def box_on_table_mesh(box_size=(0.08, 0.06, 0.10), table_size: float = 0.6, yaw: float = 0.4,
                      box_xy=(0.0, 0.0), table_divisions: int = 8):
    """A box standing on a square table at z = 0 (world z up), as one legacy ``TriangleMesh``.

    Returns:
        mesh, object_triangles (T,) bool (True for the box's 12 triangles).
    """
    import open3d as o3d

    sx, sy, sz = (float(s) for s in box_size)
    box = o3d.geometry.TriangleMesh.create_box(sx, sy, sz)
    box.translate([-sx / 2, -sy / 2, 0.0])
    c, s = math.cos(yaw), math.sin(yaw)
    box.rotate(np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]]), center=(0, 0, 0))
    box.translate([box_xy[0], box_xy[1], 0.0])
    n = int(table_divisions)
    xs = np.linspace(-table_size / 2, table_size / 2, n + 1)
    gx, gy = np.meshgrid(xs, xs)
    tv = np.stack([gx.ravel(), gy.ravel(), np.zeros(gx.size)], axis=1)
    tt = []
    for r in range(n):
        for q in range(n):
            a, b, c_, d = r * (n + 1) + q, r * (n + 1) + q + 1, (r + 1) * (n + 1) + q, (r + 1) * (n + 1) + q + 1
            tt += [[a, b, d], [a, d, c_]]
    table = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(tv), o3d.utility.Vector3iVector(np.array(tt)))
    nb = len(box.triangles)
    verts = np.concatenate([np.asarray(box.vertices), tv])
    tris = np.concatenate([np.asarray(box.triangles), np.asarray(table.triangles) + len(box.vertices)])
    mesh = o3d.geometry.TriangleMesh(o3d.utility.Vector3dVector(verts), o3d.utility.Vector3iVector(tris))
    obj = np.zeros(len(tris), dtype=bool)
    obj[:nb] = True
    return mesh, obj


def _value_noise(p: np.ndarray, cell: float, seed: int) -> np.ndarray:
    """Smooth 3-D value noise in [-1, 1]: hashed random values on a lattice of ``cell`` metres, interpolated with
    a smoothstep (not periodic, unlike sums of sines, so registration has one clear optimum)."""
    q = p / cell
    i = np.floor(q).astype(np.int64)
    f = q - i
    f = f * f * (3.0 - 2.0 * f)
    out = 0.0
    for dx in (0, 1):
        for dy in (0, 1):
            for dz in (0, 1):
                h = ((i[..., 0] + dx) * 73856093) ^ ((i[..., 1] + dy) * 19349663) ^ ((i[..., 2] + dz) * 83492791) \
                    ^ (seed * 2654435761)
                h = (h ^ (h >> 13)) * 1274126177
                val = ((h ^ (h >> 16)) & 0xFFFF) / 32767.5 - 1.0
                w = (f[..., 0] if dx else 1 - f[..., 0]) * (f[..., 1] if dy else 1 - f[..., 1]) \
                    * (f[..., 2] if dz else 1 - f[..., 2])
                out = out + w * val
    return out


def solid_texture(points: np.ndarray) -> np.ndarray:
    """A deterministic 3-D colour pattern ``(..., 3)`` uint8 of world points (metres): value noise at 6, 2.5 and
    1.2 cm per channel, so every surface has texture that photometric odometry can follow and no repeating pattern
    to lock onto the wrong period."""
    p = np.asarray(points, dtype=np.float64)
    chans = []
    for c in range(3):
        n = 0.6 * _value_noise(p, 0.06, 3 * c) + 0.3 * _value_noise(p, 0.025, 3 * c + 1) \
            + 0.2 * _value_noise(p, 0.012, 3 * c + 2)
        chans.append(128.0 + 150.0 * n)
    return np.clip(np.stack(chans, axis=-1), 0, 255).astype(np.uint8)


def orbit_poses(center, distance: float, elevation_deg: float, count: int, arc_deg: float = 360.0,
                start_deg: float = 0.0, closed: bool = True) -> list:
    """``count`` optical-frame ``T_world_camera`` on a circle around ``center`` looking at it (world z up).

    ``closed=True`` spaces ``count`` views evenly over the full ``arc_deg`` without repeating the start (a closed
    360-degree orbit returns next to the first view); ``closed=False`` puts the last view at ``start + arc``.
    """
    from dense_descriptor_grasp.geometry.rendering import look_at

    center = np.asarray(center, dtype=np.float64)
    steps = count if closed else max(count - 1, 1)
    el = math.radians(elevation_deg)
    out = []
    for k in range(count):
        az = math.radians(start_deg + arc_deg * k / steps)
        eye = center + distance * np.array([math.cos(el) * math.cos(az), math.cos(el) * math.sin(az), math.sin(el)])
        out.append(look_at(eye, center))
    return out


def render_mesh_frames(mesh, object_triangles: np.ndarray, K: np.ndarray, poses, width: int, height: int,
                       texture=solid_texture, names=None) -> list:
    """Exact views of a mesh: colour from ``texture(world points)``, depth, object mask, true pose.

    Returns ``Frame`` s with ``T_world_camera`` = the pose, ``mask`` = hits on ``object_triangles`` and
    ``info["true_T_world_camera"]`` (a copy of the pose, as nested lists).
    """
    scene = raycast_scene(mesh)
    frames = []
    for k, T in enumerate(poses):
        depth, tri = raycast(scene, K, T, width, height)
        rays = camera_rays(K, T, width, height).astype(np.float64)
        pts = rays[..., :3] + rays[..., 3:] * depth[..., None]
        rgb = texture(pts)
        rgb[depth <= 0] = (40, 40, 40)
        mask = (tri >= 0) & np.asarray(object_triangles)[np.maximum(tri, 0)]
        name = names[k] if names is not None else f"{k:06d}"
        frames.append(Frame(rgb=rgb, depth=depth, K=np.asarray(K, float), name=name,
                            T_world_camera=np.asarray(T, float), mask=mask,
                            info={"true_T_world_camera": np.asarray(T, float).tolist()}))
    return frames
