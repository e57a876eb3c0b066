"""Frames of one capture -> a training dataset in the format of docs/DATA.md ("Captured datasets").

:func:`build_dataset` runs the capture pipeline and writes the views:

1. **Poses**: the frames' own ``T_world_camera`` (from TF, a tool's trajectory) when every frame has one, else
   :func:`.poses.estimate_poses` (RGB-D odometry + pose graph; world = the first camera).
2. **Masks**: given ones, else the frames' own, else :func:`.masks.object_masks` (support plane, DBSCAN; tracked
   through the views with the poses of step 1).
3. **Fusion**: :func:`.fusion.fuse` (TSDF, object triangles by a vote of the masks) and
   :func:`.fusion.render_views` (ray-cast depth and mask per view).
4. **Views**: ``rgb/`` the colour image, ``depth/`` the ray-cast fused depth, ``mask/`` the ray-cast object mask
   (value 1), ``depth_raw/`` the sensor's depth (same encoding; the loader ignores the folder), ``camera/`` the JSON
   (``K``, ``T_world_camera``, one ``scene_id`` for all views, ``objects`` = the target with
   ``T_world_object`` = identity: the fused model's frame is the world).

Everything is written atomically and the run resumes: ``capture/poses.json`` (poses and their diagnostics),
``capture/fused_mesh.ply`` + ``capture/object_triangles.npy`` + ``capture/fusion.json`` (the fused model) and
``capture/object_mesh.ply`` are kept, so a rerun of the same command skips the finished steps and writes only the views that are missing; a rerun
with other settings on the same folder is refused (as ``generate_dataset`` does).

``build_capture_dataset --frames FOLDER --out DATASET`` does this for a capture folder (:mod:`.importer`).
:func:`correspondence_errors` measures the multi-view correspondences a built dataset makes against the truth;
:func:`compare_with_truth` does it (with the camera poses and masks) for a dataset built from ``simulate_capture``.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from typing import Optional, Sequence

import numpy as np

from .frames import Frame
from .fusion import FusedModel, FusionConfig, fuse, render_views
from .poses import PoseConfig, PoseResult, estimate_poses

__all__ = ["BuildConfig", "BuildResult", "build_dataset", "correspondence_errors", "compare_with_truth",
           "get_args_parser", "main",
           "CAPTURE_DIR", "RAW_DEPTH_DIR"]

CAPTURE_DIR = "capture"       # the pipeline's intermediate products (poses, fused mesh)
RAW_DEPTH_DIR = "depth_raw"   # the sensor's depth per view (uint16, the view's depth_scale)
BUILDER = "dense_descriptor_grasp.capture.build"


@dataclass
class BuildConfig:
    """Settings of :func:`build_dataset`.

    Attributes:
        fusion: :class:`.fusion.FusionConfig` (voxel, depth range, ...).
        poses: :class:`.poses.PoseConfig`, used when the poses are estimated.
        masks: ``capture.masks.MaskConfig`` or ``None`` (its defaults), used when masks are segmented.
        pick_pixel: ``(u, v)`` on the object in the first frame for the segmentation (``None`` = image centre).
        estimate_poses: ``"auto"`` (estimate unless every frame has ``T_world_camera``), ``"always"``, ``"never"``.
        scene_id: the one scene of the capture. The default ``"capture"`` hashes to 0.98, so with a single scene
            ``RGBDDataset(split="train")`` keeps it for every ``val_fraction`` below 0.98 (a single scene is never
            split; with several captures in one dataset give each its own id).
        object_name: the target's name in the camera JSONs and the manifest.
        depth_scale: metres per depth unit of the written depth PNGs.
        keep_raw_depth: also write the sensor's depth to ``depth_raw/``.
    """

    fusion: FusionConfig = field(default_factory=FusionConfig)
    poses: PoseConfig = field(default_factory=PoseConfig)
    masks: Optional[object] = None
    pick_pixel: Optional[tuple] = None
    estimate_poses: str = "auto"
    scene_id: str = "capture"
    object_name: str = "object"
    depth_scale: float = 1e-4
    keep_raw_depth: bool = True

    def __post_init__(self):
        if self.estimate_poses not in ("auto", "always", "never"):
            raise ValueError(f"BuildConfig.estimate_poses must be 'auto', 'always' or 'never', got "
                             f"{self.estimate_poses!r}")
        if not self.scene_id or not self.object_name:
            raise ValueError("BuildConfig: scene_id and object_name must be non-empty")
        if not self.depth_scale > 0:
            raise ValueError(f"BuildConfig.depth_scale must be > 0 metres per unit, got {self.depth_scale}")
        if self.pick_pixel is not None:
            self.pick_pixel = tuple(float(x) for x in self.pick_pixel)

    def as_args(self) -> dict:
        """JSON-safe record (what the manifest keeps; a resume must match it)."""
        def clean(d):
            return {k: (list(v) if isinstance(v, tuple) else v) for k, v in d.items()}

        masks = None
        if self.masks is not None:
            masks = clean(asdict(self.masks)) if hasattr(self.masks, "__dataclass_fields__") else repr(self.masks)
        return {"fusion": clean(asdict(self.fusion)), "poses": clean(asdict(self.poses)), "masks": masks,
                "pick_pixel": list(self.pick_pixel) if self.pick_pixel is not None else None,
                "estimate_poses": self.estimate_poses, "scene_id": self.scene_id, "object_name": self.object_name,
                "depth_scale": self.depth_scale, "keep_raw_depth": self.keep_raw_depth}


@dataclass
class BuildResult:
    """What :func:`build_dataset` did.

    Attributes:
        out_dir: the dataset folder.
        view_ids: every view id (= frame name) in order.
        written: views written by this run (the others were complete already).
        poses: ``T_world_camera`` per view (what the camera JSONs hold).
        pose_source: ``"estimated"``, ``"frames"`` (the frames' own) or ``"resumed"`` (``capture/poses.json``).
        pose_result: the :class:`.poses.PoseResult` when estimated in this run, else ``None``.
        model: the :class:`.fusion.FusedModel`.
        rendered: ``[(depth, mask)]`` per view (ray-cast).
        input_masks: the masks that went into the fusion (``None`` when the model was resumed).
        timings: seconds per step.
    """

    out_dir: str
    view_ids: list
    written: list
    poses: list
    pose_source: str
    pose_result: Optional[PoseResult]
    model: FusedModel
    rendered: list
    input_masks: Optional[list]
    timings: dict


# --------------------------------------------------------------------------------------------- file helpers
def _atomic_save_npy(path: str, array: np.ndarray) -> None:
    from dense_descriptor_grasp.atomic_io import atomic_write

    atomic_write(path, lambda f: np.save(f, array))


def _atomic_write_mesh(path: str, mesh) -> None:
    """open3d writes by file name: write a temporary .ply next to ``path`` and move it over."""
    import open3d as o3d

    from dense_descriptor_grasp.atomic_io import TEMP_PREFIX

    folder, name = os.path.split(path)
    os.makedirs(folder or ".", exist_ok=True)
    tmp = os.path.join(folder, f"{TEMP_PREFIX}{name}.{os.getpid()}.mesh.ply")
    try:
        if not o3d.io.write_triangle_mesh(tmp, mesh, write_ascii=False, compressed=False):
            raise OSError(f"{path}: open3d could not write the mesh")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _remove_temporaries(root: str) -> None:
    from dense_descriptor_grasp.data.dataset_format import remove_stale_temp_files

    remove_stale_temp_files(root, extra_folders=(RAW_DEPTH_DIR, CAPTURE_DIR))


def _manifest(view_ids, config: BuildConfig, complete: bool, extra: dict) -> dict:
    from dense_descriptor_grasp.data.dataset_format import FORMAT_NAME, FORMAT_VERSION

    ids = list(view_ids)
    return {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "objects": [config.object_name],
        "distractors": [],
        "count": len(ids),
        "depth_scale": config.depth_scale,
        "depth_unit": "metres = uint16 value * depth_scale",
        "generator": {"builder": BUILDER, "frames": ids, **config.as_args()},
        "scenes": [{"scene_id": config.scene_id, "views": ids}],
        "multiview_pairs": [[a, b] for i, a in enumerate(ids) for b in ids[i + 1:]],
        "complete": complete,
        "capture": extra,
    }


def _check_resume(out_dir: str, view_ids, config: BuildConfig) -> None:
    from dense_descriptor_grasp.data.dataset_format import read_json

    path = os.path.join(out_dir, "manifest.json")
    if not os.path.isfile(path):
        if os.path.isdir(os.path.join(out_dir, "camera")) and os.listdir(os.path.join(out_dir, "camera")):
            raise ValueError(f"{out_dir}: holds views but no manifest.json; choose an empty or new folder")
        return
    old = read_json(path).get("generator", {})
    new = json.loads(json.dumps({"builder": BUILDER, "frames": list(view_ids), **config.as_args()}))
    if old.get("builder") != BUILDER:
        raise ValueError(f"{path}: this folder holds a dataset not built from a capture "
                         f"({old.get('builder', 'generate_dataset')}); choose another --out")
    diff = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    if diff:
        raise ValueError(f"{path}: the dataset there was built with other settings or frames (differing: "
                         f"{', '.join(diff)}); rerun with the same ones to resume, or choose another --out")


def _check_names(frames) -> list:
    ids = [f.name for f in frames]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise ValueError(f"build_dataset: frame names must be unique (they become view ids), repeated: {dup}")
    bad = [i for i in ids if not i or "/" in i or "\\" in i or i.startswith(".")]
    if bad:
        raise ValueError(f"build_dataset: frame names must be plain file names, got {bad[:5]}")
    return ids


def _poses_json(path, ids, poses, source, summary):
    from dense_descriptor_grasp.data.dataset_format import atomic_write_json

    atomic_write_json(path, {"source": source, "T_world_camera": {i: np.asarray(T).tolist()
                                                                  for i, T in zip(ids, poses)},
                             "summary": summary})


def _segment(posed, config: BuildConfig):
    """Object masks of posed frames by ``capture.masks``: ``(masks, failures)``. When a view cannot be segmented
    (no plane, no cluster) it gets no mask (it does not vote in the fusion) and its error is kept; fewer than half
    of the views (or than 2) segmented is an error."""
    from .masks import MaskConfig, object_masks

    mcfg = config.masks if config.masks is not None else MaskConfig()
    try:
        return [r.mask for r in object_masks(posed, pick_pixel=config.pick_pixel, config=mcfg)], []
    except ValueError:
        pass
    # view by view, following the object of the first view that segments (its centroid in the world)
    masks, failed, X = [], [], None
    for i, f in enumerate(posed):
        try:
            if X is None:
                res = object_masks([f], pick_pixel=config.pick_pixel if i == 0 else None, config=mcfg)[0]
                X = f.T_world_camera[:3, :3] @ res.centroid + f.T_world_camera[:3, 3]
            else:
                res = object_masks([f], pick_point_world=X, config=mcfg)[0]
            masks.append(res.mask)
        except ValueError as exc:
            masks.append(None)
            failed.append(str(exc))
    ok = sum(m is not None for m in masks)
    if ok < max(2, (len(masks) + 1) // 2):
        raise ValueError(f"build_dataset: the object was found in only {ok} of {len(masks)} views; first "
                         f"failures: {'; '.join(failed[:3])}")
    return masks, failed


# ----------------------------------------------------------------------------------------------------- build
def build_dataset(frames: Sequence[Frame], out_dir: str, masks=None, poses=None, config: BuildConfig = BuildConfig(),
                  progress: bool = True) -> BuildResult:
    """Write one capture as a dataset (module docstring).

    Args:
        frames: the capture's keyframes in capture order (names become view ids).
        out_dir: the dataset folder (created; a folder of an interrupted run of the same settings is resumed).
        masks: (H, W) bool object mask per frame, or ``None`` (the frames' own, else segmented).
        poses: ``T_world_camera`` per frame, or ``None`` (the frames' own when all have one, else estimated;
            ``config.estimate_poses`` decides).
        config: :class:`BuildConfig`.
        progress: progress bars on stderr.
    Returns:
        :class:`BuildResult`.
    Raises:
        ValueError: bad inputs, a folder built with other settings; ``PoseEstimationError``, ``FusionError`` and
        the segmentation's ``ValueError`` name the frames they could not handle.
    """
    from tqdm import tqdm

    from dense_descriptor_grasp.data.dataset_format import atomic_write_json, encode_depth, view_complete, \
        write_png, write_view

    frames = list(frames)
    if not frames:
        raise ValueError("build_dataset: no frames")
    ids = _check_names(frames)
    _check_resume(out_dir, ids, config)
    os.makedirs(out_dir, exist_ok=True)
    _remove_temporaries(out_dir)
    cap_dir = os.path.join(out_dir, CAPTURE_DIR)
    os.makedirs(cap_dir, exist_ok=True)
    manifest_path = os.path.join(out_dir, "manifest.json")
    timings = {}
    extra = {}
    atomic_write_json(manifest_path, _manifest(ids, config, False, extra))

    # 1. poses
    t0 = time.perf_counter()
    poses_path = os.path.join(cap_dir, "poses.json")
    pose_result = None
    saved_poses = None
    if os.path.isfile(poses_path):
        from dense_descriptor_grasp.data.dataset_format import read_json

        saved = read_json(poses_path)
        if sorted(saved.get("T_world_camera", {})) == sorted(ids):
            saved_poses = [np.asarray(saved["T_world_camera"][i], dtype=np.float64) for i in ids]
    if poses is not None:
        poses = [np.asarray(T, dtype=np.float64) for T in poses]
        if len(poses) != len(frames) or any(T.shape != (4, 4) or not np.all(np.isfinite(T)) for T in poses):
            raise ValueError(f"build_dataset: need one finite 4x4 pose per frame ({len(frames)}), got {len(poses)}")
        source = "given"
    elif saved_poses is not None:
        poses = saved_poses
        source = "resumed"
        extra["poses"] = {k: v for k, v in saved.get("summary", {}).items() if k != "edges"}
    else:
        have = all(f.T_world_camera is not None for f in frames)
        if config.estimate_poses == "never" or (config.estimate_poses == "auto" and have):
            if not have:
                missing = [f.name for f in frames if f.T_world_camera is None][:5]
                raise ValueError(f"build_dataset: estimate_poses='never' but frames {missing} have no pose")
            poses = [f.T_world_camera for f in frames]
            source = "frames"
            summary = {"source": source}
        else:
            pose_result = estimate_poses(frames, config.poses, progress=progress)
            poses = pose_result.poses
            source = "estimated"
            summary = pose_result.summary()
        _poses_json(poses_path, ids, poses, source, summary)
        extra["poses"] = {k: v for k, v in summary.items() if k != "edges"}
    if source == "given":
        _poses_json(poses_path, ids, poses, source, {"source": source})
        extra["poses"] = {"source": source}
    same_poses = saved_poses is not None and all(np.allclose(a, b, atol=1e-9) for a, b in zip(saved_poses, poses))
    refit = saved_poses is not None and not same_poses  # other poses than the written views': rewrite them all
    extra["pose_source"] = source
    timings["poses"] = time.perf_counter() - t0

    # 2.-3. masks and fusion (or the saved model)
    t0 = time.perf_counter()
    mesh_path = os.path.join(cap_dir, "fused_mesh.ply")
    tri_path = os.path.join(cap_dir, "object_triangles.npy")
    input_masks = None
    info_path = os.path.join(cap_dir, "fusion.json")
    if all(os.path.isfile(p) for p in (mesh_path, tri_path, info_path)) and same_poses:
        import open3d as o3d

        from dense_descriptor_grasp.data.dataset_format import read_json

        mesh = o3d.io.read_triangle_mesh(mesh_path)
        obj = np.load(tri_path)
        if len(obj) != len(mesh.triangles):
            raise ValueError(f"{tri_path}: {len(obj)} labels for {len(mesh.triangles)} triangles of {mesh_path}")
        info = read_json(info_path)
        model = FusedModel(mesh=mesh, object_triangles=obj.astype(bool), voxel=float(info["voxel"]),
                           info={**info, "resumed": True})
        timings["masks"] = 0.0
    else:
        posed = [replace(f, T_world_camera=T) for f, T in zip(frames, poses)]
        if masks is not None:
            input_masks = [np.asarray(m).astype(bool) for m in masks]
            if len(input_masks) != len(frames):
                raise ValueError(f"build_dataset: {len(frames)} frames but {len(input_masks)} masks")
            extra["mask_source"] = "given"
        elif all(f.mask is not None for f in frames):
            input_masks = [f.mask for f in frames]
            extra["mask_source"] = "frames"
        else:
            if progress:
                print(f"masks: segmenting {len(posed)} views (support plane, clusters)", file=sys.stderr)
            input_masks, failed = _segment(posed, config)
            extra["mask_source"] = "segmented"
            extra["mask_failures"] = failed
        timings["masks"] = time.perf_counter() - t0
        t0 = time.perf_counter()
        model = fuse(posed, poses, input_masks, config.fusion, progress=progress)
        _atomic_write_mesh(mesh_path, model.mesh)
        _atomic_write_mesh(os.path.join(cap_dir, "object_mesh.ply"), model.object_mesh())
        _atomic_save_npy(tri_path, model.object_triangles)
        atomic_write_json(info_path, model.info)  # last: the saved model is complete
    extra["fusion"] = dict(model.info)
    timings["fusion"] = time.perf_counter() - t0

    # 4. views
    t0 = time.perf_counter()
    rendered = render_views(model, frames, poses)
    written = []
    small = []
    objects = [{"name": config.object_name, "mask_value": 1, "T_world_object": np.eye(4).tolist(),
                "role": "target", "scale": 1.0}]
    for f, T, (depth, mask) in tqdm(list(zip(frames, poses, rendered)), desc="views", unit="view",
                                    disable=not progress):
        if int(mask.sum()) < 20:
            small.append(f.name)
        raw_path = os.path.join(out_dir, RAW_DEPTH_DIR, f.name + ".png")
        if not refit and view_complete(out_dir, f.name) and (os.path.isfile(raw_path) or not config.keep_raw_depth):
            continue
        if config.keep_raw_depth:  # before write_view: its camera JSON marks the view complete
            write_png(raw_path, encode_depth(f.depth, config.depth_scale))
        camera = {"K": np.asarray(f.K).tolist(), "T_world_camera": np.asarray(T).tolist(),
                  "scene_id": config.scene_id, "objects": objects, "target": config.object_name,
                  "depth_source": "fused", "raw_depth": f"{RAW_DEPTH_DIR}/{f.name}.png" if config.keep_raw_depth
                  else None, "stamp": float(f.stamp)}
        write_view(out_dir, f.name, f.rgb, depth, mask.astype(np.uint8), camera, depth_scale=config.depth_scale)
        written.append(f.name)
    timings["views"] = time.perf_counter() - t0
    extra["views_with_few_object_pixels"] = small
    extra["timings_s"] = {k: round(v, 3) for k, v in timings.items()}
    atomic_write_json(manifest_path, _manifest(ids, config, True, extra))
    return BuildResult(out_dir=out_dir, view_ids=ids, written=written, poses=[np.asarray(T) for T in poses],
                       pose_source=source, pose_result=pose_result, model=model, rendered=rendered,
                       input_masks=input_masks, timings=timings)


# ------------------------------------------------------------------------------------------------ measurement
def correspondence_errors(Ks, poses, depths, masks, true_poses, true_depths, true_masks=None, pairs=None,
                          max_points: int = 2000, seed: int = 0, occlusion_tolerance: float = 0.005,
                          occlusion_relative: float = 0.01) -> dict:
    """Multi-view correspondences made from the built data (``data.pairs.make_multiview_pair``'s rule) against the
    true ones.

    For each ordered pair ``(a, b)``: pixels of ``masks[a]`` with ``depths[a]`` are back-projected, moved by the
    built ``T_B<-A`` and projected into B, and kept where they land in ``masks[b]`` with ``depths[b]`` within
    ``max(occlusion_tolerance, occlusion_relative z)`` (what training uses). The same pixel of A back-projected with
    the **true** depth and moved by the **true** poses lands at the true position in B; the error is the distance
    between the two (pixels), over every kept correspondence whose pixel has a true depth. Also counted: kept
    correspondences whose true point is hidden in B by the same rule applied to the true depths (at grazing angles
    and silhouettes the 5 mm rule is strict: many of them are still within a pixel) and those whose pixel lies
    outside ``true_masks[a]``.

    Args:
        Ks: (3, 3) per view; poses, true_poses: (4, 4) ``T_world_camera`` per view (each in its own world);
        depths, true_depths: (H, W) metres (0 = none); masks, true_masks: (H, W) bool.
        pairs: ``[(a, b)]`` indices (default every ordered pair).
        max_points: at most this many pixels of A per pair (random, ``seed``).
    Returns:
        dict: ``median_px``, ``p90_px``, ``mean_px`` (kept correspondences with a true depth), ``median_px_visible``,
        ``p90_px_visible`` (of those, the ones visible in B by the truth), ``hidden_fraction``,
        ``off_object_fraction`` (shares of the kept ones), ``count`` (kept), ``pairs`` (pairs with at least one
        measured correspondence), ``per_pair_median_px``.
    """
    n = len(Ks)
    if pairs is None:
        pairs = [(a, b) for a in range(n) for b in range(n) if a != b]
    rng = np.random.default_rng(seed)
    errs, errs_visible, per_pair, n_hidden, n_off, n_all = [], [], [], 0, 0, 0

    def project(X, K):
        z = X[:, 2]
        zs = np.where(z > 1e-9, z, 1e-9)
        return np.stack([K[0, 0] * X[:, 0] / zs + K[0, 2], K[1, 1] * X[:, 1] / zs + K[1, 2]], 1), z

    def lookup(img, uv):
        h, w = img.shape
        u, v = np.rint(uv[:, 0]).astype(np.int64), np.rint(uv[:, 1]).astype(np.int64)
        inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
        out = np.zeros(len(uv), dtype=img.dtype)
        out[inside] = img[v[inside], u[inside]]
        return out, inside

    for a, b in pairs:
        Ka, Kb = np.asarray(Ks[a], float), np.asarray(Ks[b], float)
        v, u = np.nonzero(np.asarray(masks[a], bool) & (np.asarray(depths[a]) > 0))
        if len(v) == 0:
            continue
        if len(v) > max_points:
            keep = rng.choice(len(v), max_points, replace=False)
            v, u = v[keep], u[keep]
        uv_a = np.stack([u, v], 1).astype(np.float64)

        def move(depth, T_wa, T_wb):
            z = np.asarray(depth, np.float64)[v, u]
            X = np.stack([(u - Ka[0, 2]) / Ka[0, 0] * z, (v - Ka[1, 2]) / Ka[1, 1] * z, z], 1)
            T = np.linalg.inv(T_wb) @ T_wa
            return project(X @ T[:3, :3].T + T[:3, 3], Kb), z

        (uv_b, z_b), _ = move(depths[a], poses[a], poses[b])
        mb, inside = lookup(np.asarray(masks[b], bool), uv_b)
        db, _ = lookup(np.asarray(depths[b], np.float32), uv_b)
        tol = np.maximum(occlusion_tolerance, occlusion_relative * np.abs(z_b))
        ok = inside & mb & (db > 0) & (z_b > 0) & (np.abs(db - z_b) <= tol)
        if not ok.any():
            continue
        (uv_t, z_t), z_true_a = move(true_depths[a], true_poses[a], true_poses[b])
        dt, inside_t = lookup(np.asarray(true_depths[b], np.float32), uv_t)
        tol_t = np.maximum(occlusion_tolerance, occlusion_relative * np.abs(z_t))
        has_true = z_true_a > 0
        visible = has_true & inside_t & (dt > 0) & (np.abs(dt - z_t) <= tol_t)
        on_object = np.asarray(true_masks[a], bool)[v, u] if true_masks is not None else np.ones(len(v), bool)
        measured = ok & has_true
        n_all += int(ok.sum())
        n_hidden += int((measured & ~visible).sum())
        n_off += int((ok & ~on_object).sum())
        if measured.any():
            e = np.linalg.norm(uv_b[measured] - uv_t[measured], axis=1)
            errs.append(e)
            errs_visible.append(np.linalg.norm(uv_b[measured & visible] - uv_t[measured & visible], axis=1))
            per_pair.append(float(np.median(e)))

    def stats(chunks):
        x = np.concatenate(chunks) if chunks else np.zeros(0)
        if not len(x):
            return float("nan"), float("nan"), float("nan")
        return float(np.median(x)), float(np.percentile(x, 90)), float(x.mean())

    med, p90, mean = stats(errs)
    med_v, p90_v, _ = stats(errs_visible)
    return {
        "median_px": med, "p90_px": p90, "mean_px": mean,
        "median_px_visible": med_v, "p90_px_visible": p90_v,
        "hidden_fraction": n_hidden / n_all if n_all else float("nan"),
        "off_object_fraction": n_off / n_all if n_all else float("nan"),
        "count": int(n_all),
        "pairs": len(per_pair),
        "per_pair_median_px": per_pair,
    }


def compare_with_truth(dataset_dir: str, capture_folder: str) -> dict:
    """A dataset built from a simulated capture (``simulate_capture --out CAPTURE``) against the simulator's truth.

    Returns a JSON-safe dict: ``views``; ``pose_translation_mm`` / ``pose_rotation_deg`` (``median``, ``max``; first
    camera aligned, :func:`.poses.pose_errors`); ``mask_iou`` (``median``, ``min``) of the dataset's masks;
    ``correspondences`` (:func:`correspondence_errors` without ``per_pair_median_px``).
    """
    from dense_descriptor_grasp.data.dataset import RGBDDataset

    from .masks import mask_iou
    from .poses import pose_errors
    from .simulate import read_simulated_truth

    truth = read_simulated_truth(capture_folder)
    views = RGBDDataset(dataset_dir, validate=False)
    samples = [views.load_numpy(i) for i in range(len(views))]
    names = [s["view_id"] for s in samples]
    missing = [n for n in names if n not in truth["T_world_camera"]]
    if missing:
        raise ValueError(f"{capture_folder}: no truth for views {missing[:5]} of {dataset_dir}")
    true_poses = [truth["T_world_camera"][n] for n in names]
    t_err, r_err = pose_errors([s["T_world_camera"] for s in samples], true_poses)
    ious = [mask_iou(s["mask"], truth["masks"][n]) for s, n in zip(samples, names)]
    corr = correspondence_errors([s["K"] for s in samples], [s["T_world_camera"] for s in samples],
                                 [s["depth"] for s in samples], [s["mask"] for s in samples], true_poses,
                                 [truth["depths"][n] for n in names], [truth["masks"][n] for n in names])
    corr.pop("per_pair_median_px")
    return {"views": len(samples),
            "pose_translation_mm": {"median": float(np.median(t_err) * 1e3), "max": float(t_err.max() * 1e3)},
            "pose_rotation_deg": {"median": float(np.median(r_err)), "max": float(r_err.max())},
            "mask_iou": {"median": float(np.median(ious)), "min": float(min(ious))},
            "correspondences": corr}


# ---------------------------------------------------------------------------------------------------- the CLI
def get_args_parser() -> argparse.ArgumentParser:
    d = BuildConfig()
    ap = argparse.ArgumentParser(prog="build_capture_dataset", description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    ap.add_argument("--frames", required=True, help="capture folder (colour, 16-bit depth, intrinsics; "
                                                    "capture/importer.py's layout)")
    ap.add_argument("--out", required=True, help="dataset folder to write (an interrupted run resumes)")
    ap.add_argument("--pick-pixel", type=float, nargs=2, metavar=("U", "V"), default=None,
                    help="a pixel on the object in the first frame (default: the image centre)")
    ap.add_argument("--voxel", type=float, default=d.fusion.voxel,
                    help="TSDF voxel size in metres (default: automatic, 2 pixel footprints at the object's "
                         "median depth, 2-10 mm)")
    ap.add_argument("--depth-max", type=float, default=d.fusion.depth_max,
                    help="depth beyond this is not fused (metres)")
    ap.add_argument("--use-poses-from-folder", action="store_true",
                    help="use the folder's camera poses (poses.json / trajectory.log, e.g. from TF) instead of "
                         "estimating them with RGB-D odometry and a pose graph")
    ap.add_argument("--object-name", default=d.object_name, help="the target's name in the dataset")
    ap.add_argument("--scene-id", default=d.scene_id, help="scene id shared by every view of the capture")
    ap.add_argument("--stride", type=int, default=1, help="use every N-th frame of the folder")
    ap.add_argument("--max-frames", type=int, default=None, help="use at most this many frames (after --stride)")
    ap.add_argument("--no-raw-depth", action="store_true", help="do not keep the sensor's depth in depth_raw/")
    ap.add_argument("--no-progress", action="store_true", help="no progress bars")
    return ap


def main(argv=None) -> int:
    args = get_args_parser().parse_args(argv)
    from .fusion import FusionError
    from .poses import PoseEstimationError

    try:
        from .importer import read_capture_folder

        frames = read_capture_folder(args.frames, stride=args.stride, max_frames=args.max_frames)
        if args.use_poses_from_folder:
            missing = [f.name for f in frames if f.T_world_camera is None]
            if missing:
                raise ValueError(f"{args.frames}: --use-poses-from-folder, but frames {missing[:5]} have no pose "
                                 "(poses.json or trajectory.log)")
        else:
            frames = [replace(f, T_world_camera=None) for f in frames]
        config = BuildConfig(fusion=FusionConfig(voxel=args.voxel, depth_max=args.depth_max),
                             pick_pixel=tuple(args.pick_pixel) if args.pick_pixel else None,
                             estimate_poses="never" if args.use_poses_from_folder else "always",
                             scene_id=args.scene_id, object_name=args.object_name,
                             keep_raw_depth=not args.no_raw_depth)
        t0 = time.perf_counter()
        result = build_dataset(frames, args.out, config=config, progress=not args.no_progress)
    except (ValueError, PoseEstimationError, FusionError, OSError) as exc:
        print(f"build_capture_dataset: error: {exc}", file=sys.stderr)
        return 2
    info = result.pose_result.info if result.pose_result is not None else {}
    loops = f", {info.get('loop_closures_accepted', 0)} loop closures" if info else ""
    print(f"build_capture_dataset: {len(result.view_ids)} views in {args.out} ({len(result.written)} written now; "
          f"poses {result.pose_source}{loops}; fused mesh {len(result.model.mesh.triangles)} triangles, "
          f"object {int(result.model.object_triangles.sum())}, voxel {result.model.voxel * 1000:.1f} mm) in {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
