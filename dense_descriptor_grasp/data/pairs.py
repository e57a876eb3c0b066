"""Training pairs with exact correspondences and a relative camera pose (docs/ARCHITECTURE.md, docs/DATA.md).

* Augmentation pairs (the paper, section 3.1): two random virtual cameras (:mod:`.augment`) of one view;
  correspondences are source pixels seen in both; ``T_B<-A`` is the Kabsch fit of the back-projected
  correspondences, and ``fit_residual`` says how far the 2-D warp was from a rigid motion. World = camera A.
* Multi-view pairs: two rendered views of one scene (same object pose); ``T_B<-A`` is exact and
  correspondences come from projecting A's depth into B with an occlusion check against B's depth.
* Cross-scene pairs: views of two *different* scenes (other background, light, distractors and object pose), made
  like multi-view pairs in the target object's frame (world = object; both views must record the target's pose),
  so a point of the object corresponds to the same point in another scene: what the grasp node's reference, made
  once in another scene, asks of the descriptors.

Correspondences lie on the **target** (``mask`` of the samples: target pixels only when the dataset has
distractors). Every pair also carries K off-target **negative** pixels per view (``num_negatives``): about half on
distractors (``objects_mask`` minus the target) and the rest on the background (no object), all at least 3 px from
the target mask.

Pair dict (numpy from the functions here, torch from :class:`PairDataset`):
``rgb_a/b (3, H, W) float32``, ``depth_a/b (H, W)``, ``mask_a/b (H, W) bool``, ``K_a/b (3, 3)``,
``T_world_cam_a/b (4, 4)``, ``uv_a/b (M, 2)``, ``valid (M,) bool``, ``fit_residual ()``,
``neg_uv_a/b (K, 2) float32``, ``neg_valid_a/b (K,) bool``, ``xyz (M, 3) float32``: each correspondence's
point in the target object's frame (metres; NaN when the view records no target pose, e.g. a user capture).
"""
from __future__ import annotations

import numpy as np
import torch

from ..geometry.camera import backproject, project
from ..geometry.rigid_fit import fit_residual, kabsch
from .augment import (AugmentConfig, JitterConfig, photometric_jitter, replace_background, sensor_noise_view,
                      sample_virtual_camera, warp_mask, warp_view)
from .backgrounds import list_background_images

__all__ = ["PairError", "make_augmentation_pair", "make_multiview_pair", "make_cross_scene_pair", "PairDataset",
           "collate_pairs", "pair_to_torch", "PAIR_KEYS", "sample_negatives", "NEGATIVE_MARGIN_PX",
           "crop_around_target"]

PAIR_KEYS = ("rgb_a", "rgb_b", "depth_a", "depth_b", "mask_a", "mask_b", "K_a", "K_b", "T_world_cam_a",
             "T_world_cam_b", "uv_a", "uv_b", "valid", "fit_residual", "xyz", "neg_uv_a", "neg_valid_a", "neg_uv_b",
             "neg_valid_b")

NEGATIVE_MARGIN_PX = 2  # default: negatives avoid the target mask dilated by this many pixels (a 5 x 5 square)


class PairError(ValueError):
    """No pair could be made from a view (object warped out of view, too few valid correspondences)."""


def _float_rgb(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb.astype(np.float32) / 255.0
    return rgb.astype(np.float32)


def _lookup(img: np.ndarray, uv: np.ndarray):
    """Nearest-pixel values of ``img`` at ``uv (N, 2)`` and whether ``uv`` rounds inside the image."""
    h, w = img.shape[:2]
    iu, iv = np.rint(uv[:, 0]).astype(np.int64), np.rint(uv[:, 1]).astype(np.int64)
    inside = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    vals = img[np.clip(iv, 0, h - 1), np.clip(iu, 0, w - 1)]
    return vals, inside


def _choose(rng: np.random.Generator, n_candidates: int, m: int):
    """Indices of ``m`` candidates (without replacement) and their validity; padded with invalid rows."""
    idx = rng.permutation(n_candidates)[:m]
    valid = np.zeros(m, dtype=bool)
    valid[:len(idx)] = True
    out = np.zeros(m, dtype=np.int64)
    out[:len(idx)] = idx
    return out, valid


def sample_negatives(rng: np.random.Generator, target: np.ndarray, objects: np.ndarray, k: int,
                     allowed: np.ndarray | None = None, margin_px: int = NEGATIVE_MARGIN_PX):
    """``(uv (k, 2) float32, valid (k,) bool)``: off-target pixels of one view.

    ``k // 2`` are drawn uniformly (without replacement) from distractor pixels (``objects & ~target``) and the
    rest from background pixels (``~objects``); when one kind runs short the other fills in, then rows are padding
    (``valid`` False, uv 0). No pixel lies within ``margin_px`` of ``target`` (the mask dilated by a
    ``2 margin_px + 1`` square; default :data:`NEGATIVE_MARGIN_PX`); ``allowed`` (e.g. the part of a warped view that
    shows the source image) restricts both kinds. ``k = 0`` draws nothing.
    """
    uv = np.zeros((k, 2), dtype=np.float32)
    valid = np.zeros(k, dtype=bool)
    if k == 0:
        return uv, valid
    import cv2

    if margin_px < 0:
        raise ValueError(f"sample_negatives: margin_px must be >= 0, got {margin_px}")
    size = 2 * int(margin_px) + 1
    near = cv2.dilate(np.asarray(target, dtype=np.uint8), np.ones((size, size), np.uint8)) > 0
    area = ~near if allowed is None else (~near & allowed)
    objects = np.asarray(objects, dtype=bool)
    distractor = np.flatnonzero(area & objects)
    background = np.flatnonzero(area & ~objects)
    n_d = min(k // 2, len(distractor))
    n_b = min(k - n_d, len(background))
    n_d = min(k - n_b, len(distractor))
    idx = np.concatenate([rng.choice(distractor, size=n_d, replace=False) if n_d else np.zeros(0, np.int64),
                          rng.choice(background, size=n_b, replace=False) if n_b else np.zeros(0, np.int64)])
    w = target.shape[1]
    uv[:len(idx), 0] = idx % w
    uv[:len(idx), 1] = idx // w
    valid[:len(idx)] = True
    return uv, valid


def crop_around_target(sample: dict, size, rng: np.random.Generator) -> dict:
    """A random ``size = (h, w)`` window of a view that shows its target (training on crops: ``data.crop``).

    The window is centred on a random target pixel (one with depth when there is any), then shifted by up to a
    quarter of its size either way and clipped to the image, so the target sits anywhere in it and its context
    (floor, distractors next to it) comes along. Every image of the sample (``rgb``, ``depth``, ``mask``,
    ``objects_mask``) is cut alike and ``K``'s principal point moves with the window; the poses stay, so
    back-projection and object coordinates are unchanged. A view smaller than ``size`` in a dimension, or one
    without target pixels, is returned unchanged in that dimension / whole.

    Args:
        sample: numpy sample (:meth:`~.dataset.RGBDDataset.load_numpy`): ``rgb (H, W, 3)``, ``depth (H, W)``,
            ``mask (H, W)`` bool, ``K (3, 3)``; optional ``objects_mask``.
        size: ``(h, w)`` of the window, pixels.
        rng: numpy Generator.
    Returns:
        a new sample dict with the cut images, the moved ``K`` and ``crop_origin = (u0, v0)``.
    """
    h, w = int(size[0]), int(size[1])
    if h < 1 or w < 1:
        raise ValueError(f"crop_around_target: size must be positive (h, w), got {size!r}")
    mask = np.asarray(sample["mask"], dtype=bool)
    H, W = mask.shape
    depth = np.asarray(sample["depth"])
    vv, uu = np.nonzero(mask & (depth > 0))
    if len(uu) == 0:
        vv, uu = np.nonzero(mask)
    if len(uu) == 0 or (h >= H and w >= W):
        return dict(sample, crop_origin=(0, 0))
    k = int(rng.integers(len(uu)))

    def origin(centre, n, N):
        if n >= N:
            return 0, N
        start = int(round(centre - n / 2 + rng.uniform(-n / 4, n / 4)))
        start = min(max(start, 0), N - n)
        return start, n

    v0, hh = origin(vv[k], h, H)
    u0, ww = origin(uu[k], w, W)
    rows, cols = slice(v0, v0 + hh), slice(u0, u0 + ww)
    out = dict(sample)
    for key in ("rgb", "depth", "mask", "objects_mask"):
        if key in sample and sample[key] is not None:
            out[key] = np.ascontiguousarray(np.asarray(sample[key])[rows, cols])
    K = np.array(sample["K"], dtype=np.float64, copy=True)
    K[0, 2] -= u0
    K[1, 2] -= v0
    out["K"] = K
    out["crop_origin"] = (u0, v0)
    return out


def _object_coordinates(X_cam: np.ndarray, T_world_camera, T_world_object) -> np.ndarray:
    """``(N, 3)`` float32 target-object-frame coordinates of camera-frame points; NaN when a pose is unknown."""
    T_wc = np.asarray(T_world_camera if T_world_camera is not None else np.eye(4), dtype=np.float64)
    T_wo = np.asarray(T_world_object if T_world_object is not None else np.full((4, 4), np.nan), dtype=np.float64)
    if not (np.all(np.isfinite(T_wo)) and np.all(np.isfinite(T_wc))):
        return np.full((len(X_cam), 3), np.nan, dtype=np.float32)
    T = np.linalg.inv(T_wo) @ T_wc
    return (np.asarray(X_cam, dtype=np.float64) @ T[:3, :3].T + T[:3, 3]).astype(np.float32)


def _finish_views(rgb, depth, objects_mask, K, rng, jitter: JitterConfig, augment: AugmentConfig | None, files):
    """Background replacement behind every object (target and distractors), sensor noise, photometric jitter."""
    if augment is not None and augment.background_prob > 0 and rng.random() < augment.background_prob:
        kinds = list(augment.background_kinds) + (["images"] if files else [])
        rgb, depth = replace_background(rgb, depth, objects_mask, rng, kinds, files, augment.keep_background_depth)
    rgb, depth = sensor_noise_view(rgb, depth, K, rng, jitter)
    return photometric_jitter(rgb, rng, jitter), depth


def make_augmentation_pair(sample: dict, rng: np.random.Generator, num_correspondences: int = 128,
                           augment: AugmentConfig | None = None, jitter: JitterConfig | None = None,
                           cameras: tuple | None = None, background_files=None, max_tries: int = 10,
                           max_fit_points: int = 1024, num_negatives: int = 0,
                           negative_margin_px: int = NEGATIVE_MARGIN_PX) -> dict:
    """The paper's pair: views A and B of one sample under two random virtual cameras.

    Args:
        sample: numpy sample (``rgb (H, W, 3)`` uint8 or float [0, 1], ``depth``, ``mask`` (target), ``K``,
            ``view_id``; optional ``objects_mask``, default ``mask``).
        rng: numpy Generator (all randomness).
        num_correspondences: M rows of ``uv_a``, ``uv_b``, ``valid`` (padded with ``valid = False``).
        augment, jitter: configs; ``JitterConfig.off()`` for exact colours.
        cameras: optional fixed ``(VirtualCamera, VirtualCamera)`` for A and B (tests).
        max_fit_points: the Kabsch fit uses at most this many of the corresponding pixels (random subset).
        num_negatives: K off-target pixels per view, sampled in the warped views (:func:`sample_negatives`).
        negative_margin_px: the negatives keep this many pixels away from the target (:func:`sample_negatives`).
    Returns:
        numpy pair dict; ``T_world_cam_a = I``, ``T_world_cam_b = inverse(T_B<-A)``.
    Raises:
        PairError: fewer than 3 correspondences after ``max_tries`` augmentations.
    """
    augment = augment or AugmentConfig()
    jitter = JitterConfig() if jitter is None else jitter
    rgb = _float_rgb(sample["rgb"])
    depth = np.asarray(sample["depth"], dtype=np.float32)
    mask = np.asarray(sample["mask"], dtype=bool)
    objects = np.asarray(sample.get("objects_mask", mask), dtype=bool) | mask
    K = np.asarray(sample["K"], dtype=np.float64)
    h, w = depth.shape
    src_v, src_u = np.nonzero(mask & (depth > 0))
    if len(src_u) < 3:
        raise PairError(f"view {sample.get('view_id')}: fewer than 3 mask pixels with valid depth")
    src_uv = np.stack([src_u, src_v], axis=-1).astype(np.float64)
    src_z = depth[src_v, src_u].astype(np.float64)
    for _ in range(max_tries if cameras is None else 1):
        cam_a, cam_b = cameras or (sample_virtual_camera(rng, augment, (h, w)),
                                   sample_virtual_camera(rng, augment, (h, w)))
        rgb_a, depth_a, mask_a, grid_a = warp_view(rgb, depth, mask, K, cam_a)
        rgb_b, depth_b, mask_b, grid_b = warp_view(rgb, depth, mask, K, cam_b)
        uv_a, uv_b = cam_a.map_points(K, src_uv), cam_b.map_points(K, src_uv)
        z_a = src_z * cam_a.depth_factor(K, src_uv)
        z_b = src_z * cam_b.depth_factor(K, src_uv)
        ma, in_a = _lookup(mask_a, uv_a)
        mb, in_b = _lookup(mask_b, uv_b)
        da, _ = _lookup(depth_a, uv_a)
        db, _ = _lookup(depth_b, uv_b)
        ok = in_a & in_b & ma & mb & (da > 0) & (db > 0) & (z_a > 0) & (z_b > 0)
        if ok.sum() >= 3:
            break
    else:
        raise PairError(f"view {sample.get('view_id')}: fewer than 3 correspondences survive the augmentation "
                        f"after {max_tries} tries (object warped out of view?)")
    fit = np.nonzero(ok)[0]
    if len(fit) > max_fit_points:  # a random subset fits as well and keeps the SVD cheap
        fit = np.sort(rng.choice(fit, size=max_fit_points, replace=False))
    X_a = backproject(uv_a[fit], z_a[fit], K)
    X_b = backproject(uv_b[fit], z_b[fit], K)
    T_b_a = kabsch(X_a, X_b)
    residual = float(fit_residual(T_b_a, X_a, X_b))
    files = background_files
    objects_a, inside_a = warp_mask(objects, grid_a)
    objects_b, inside_b = warp_mask(objects, grid_b)
    rgb_a, depth_a = _finish_views(rgb_a, depth_a, objects_a, K, rng, jitter, augment, files)
    rgb_b, depth_b = _finish_views(rgb_b, depth_b, objects_b, K, rng, jitter, augment, files)
    cand = np.nonzero(ok)[0]
    pick, valid = _choose(rng, len(cand), num_correspondences)
    sel = cand[pick]
    xyz = _object_coordinates(backproject(src_uv[sel], src_z[sel], K), sample.get("T_world_camera"),
                              sample.get("T_world_object"))
    neg_uv_a, neg_valid_a = sample_negatives(rng, mask_a, objects_a, num_negatives, inside_a, negative_margin_px)
    neg_uv_b, neg_valid_b = sample_negatives(rng, mask_b, objects_b, num_negatives, inside_b, negative_margin_px)
    return {
        "rgb_a": rgb_a.transpose(2, 0, 1).copy(), "rgb_b": rgb_b.transpose(2, 0, 1).copy(),
        "depth_a": depth_a, "depth_b": depth_b, "mask_a": mask_a, "mask_b": mask_b,
        "K_a": K.astype(np.float32), "K_b": K.astype(np.float32),
        "T_world_cam_a": np.eye(4, dtype=np.float32),
        "T_world_cam_b": np.linalg.inv(T_b_a).astype(np.float32),
        "uv_a": np.where(valid[:, None], uv_a[sel], 0.0).astype(np.float32),
        "uv_b": np.where(valid[:, None], uv_b[sel], 0.0).astype(np.float32),
        "valid": valid,
        "fit_residual": np.float32(residual),
        "xyz": np.where(valid[:, None], xyz, np.nan).astype(np.float32),
        "neg_uv_a": neg_uv_a, "neg_valid_a": neg_valid_a, "neg_uv_b": neg_uv_b, "neg_valid_b": neg_valid_b,
    }


def make_multiview_pair(sample_a: dict, sample_b: dict, rng: np.random.Generator, num_correspondences: int = 128,
                        jitter: JitterConfig | None = None, occlusion_tolerance: float = 0.005,
                        occlusion_relative: float = 0.01, num_negatives: int = 0,
                        augment: AugmentConfig | None = None, background_files=None,
                        negative_margin_px: int = NEGATIVE_MARGIN_PX) -> dict:
    """A true multi-view pair: two views of one object pose with exact ``T_world_cam_a``, ``T_world_cam_b``.

    Correspondences: pixels of A's (target) mask with valid depth, back-projected, moved by ``T_B<-A``, projected
    into B; kept when they land in B's mask and B's depth there agrees within
    ``max(occlusion_tolerance, occlusion_relative * z)`` metres (otherwise the point is hidden in B, e.g. behind
    a distractor). ``num_negatives`` off-target pixels per view, at least ``negative_margin_px`` from the target
    (:func:`sample_negatives`). With ``augment``, each
    view's background (behind every object) is replaced independently with chance ``augment.background_prob``
    (:func:`~.augment.replace_background`), so the two views of a point on the outline differ in what lies behind it.
    """
    jitter = JitterConfig() if jitter is None else jitter
    K_a, K_b = np.asarray(sample_a["K"], np.float64), np.asarray(sample_b["K"], np.float64)
    T_wa = np.asarray(sample_a["T_world_camera"], np.float64)
    T_wb = np.asarray(sample_b["T_world_camera"], np.float64)
    T_b_a = np.linalg.inv(T_wb) @ T_wa
    depth_a, depth_b = np.asarray(sample_a["depth"], np.float32), np.asarray(sample_b["depth"], np.float32)
    mask_a, mask_b = np.asarray(sample_a["mask"], bool), np.asarray(sample_b["mask"], bool)
    v, u = np.nonzero(mask_a & (depth_a > 0))
    uv_a = np.stack([u, v], axis=-1).astype(np.float64)
    X_a = backproject(uv_a, depth_a[v, u].astype(np.float64), K_a)
    X_b = X_a @ T_b_a[:3, :3].T + T_b_a[:3, 3]
    with np.errstate(divide="ignore", invalid="ignore"):
        uv_b, z_b = project(X_b, K_b)
    uv_b = np.where(np.isfinite(uv_b) & (z_b[:, None] > 0), uv_b, -1e6)
    mb, inside = _lookup(mask_b, uv_b)
    db, _ = _lookup(depth_b, uv_b)
    tol = np.maximum(occlusion_tolerance, occlusion_relative * np.abs(z_b))
    ok = inside & mb & (db > 0) & (z_b > 0) & (np.abs(db - z_b) <= tol)
    cand = np.nonzero(ok)[0]
    pick, valid = _choose(rng, len(cand), num_correspondences)
    sel = cand[pick] if len(cand) else pick
    if augment is None:   # (the draws of the pairs made before the background option, unchanged)
        rgb_a, depth_a = sensor_noise_view(_float_rgb(sample_a["rgb"]), depth_a, K_a, rng, jitter)
        rgb_b, depth_b = sensor_noise_view(_float_rgb(sample_b["rgb"]), depth_b, K_b, rng, jitter)
        rgb_a = photometric_jitter(rgb_a, rng, jitter)
        rgb_b = photometric_jitter(rgb_b, rng, jitter)
    else:
        objects_a = np.asarray(sample_a.get("objects_mask", mask_a), bool) | mask_a
        objects_b = np.asarray(sample_b.get("objects_mask", mask_b), bool) | mask_b
        rgb_a, depth_a = _finish_views(_float_rgb(sample_a["rgb"]), depth_a, objects_a, K_a, rng, jitter, augment,
                                       background_files)
        rgb_b, depth_b = _finish_views(_float_rgb(sample_b["rgb"]), depth_b, objects_b, K_b, rng, jitter, augment,
                                       background_files)
    uv_a_sel = uv_a[sel] if len(uv_a) else np.zeros((num_correspondences, 2))
    uv_b_sel = uv_b[sel] if len(uv_b) else np.zeros((num_correspondences, 2))
    xyz = (_object_coordinates(X_a[sel], T_wa, sample_a.get("T_world_object")) if len(uv_a)
           else np.full((num_correspondences, 3), np.nan, np.float32))
    objects_a = np.asarray(sample_a.get("objects_mask", mask_a), bool) | mask_a
    objects_b = np.asarray(sample_b.get("objects_mask", mask_b), bool) | mask_b
    neg_uv_a, neg_valid_a = sample_negatives(rng, mask_a, objects_a, num_negatives, margin_px=negative_margin_px)
    neg_uv_b, neg_valid_b = sample_negatives(rng, mask_b, objects_b, num_negatives, margin_px=negative_margin_px)
    return {
        "rgb_a": rgb_a.transpose(2, 0, 1).copy(), "rgb_b": rgb_b.transpose(2, 0, 1).copy(),
        "depth_a": depth_a, "depth_b": depth_b, "mask_a": mask_a, "mask_b": mask_b,
        "K_a": K_a.astype(np.float32), "K_b": K_b.astype(np.float32),
        "T_world_cam_a": T_wa.astype(np.float32), "T_world_cam_b": T_wb.astype(np.float32),
        "uv_a": np.where(valid[:, None], uv_a_sel, 0.0).astype(np.float32),
        "uv_b": np.where(valid[:, None], uv_b_sel, 0.0).astype(np.float32),
        "valid": valid,
        "fit_residual": np.float32(0.0),
        "xyz": np.where(valid[:, None], xyz, np.nan).astype(np.float32),
        "neg_uv_a": neg_uv_a, "neg_valid_a": neg_valid_a, "neg_uv_b": neg_uv_b, "neg_valid_b": neg_valid_b,
    }


def _in_object_frame(sample: dict) -> dict:
    """``sample`` with its camera pose in the target object's frame (``T_world_object`` = identity)."""
    T_wo = sample.get("T_world_object")
    if T_wo is None or not np.all(np.isfinite(np.asarray(T_wo, dtype=np.float64))):
        raise PairError(f"view {sample.get('view_id')}: a cross-scene pair needs the target's pose (T_world_object)")
    T_oc = np.linalg.inv(np.asarray(T_wo, np.float64)) @ np.asarray(sample["T_world_camera"], np.float64)
    return {**sample, "T_world_camera": T_oc, "T_world_object": np.eye(4)}


def make_cross_scene_pair(sample_a: dict, sample_b: dict, rng: np.random.Generator, num_correspondences: int = 128,
                          jitter: JitterConfig | None = None, num_negatives: int = 0, **kw) -> dict:
    """A pair of views of two scenes with the same target: :func:`make_multiview_pair` in the object's frame.

    Both samples need ``T_world_object`` (the target's pose; :class:`PairError` otherwise). The returned
    ``T_world_cam_a/b`` are the cameras in the object frame and ``xyz`` the object points, so every loss that uses
    poses (multi-view consistency, relative pose) sees one rigid scene.
    """
    return make_multiview_pair(_in_object_frame(sample_a), _in_object_frame(sample_b), rng, num_correspondences,
                               jitter, num_negatives=num_negatives, **kw)


def pair_to_torch(pair: dict) -> dict:
    """Numpy pair dict -> torch tensors (same keys, same dtypes, ``fit_residual`` a 0-d tensor)."""
    return {k: torch.as_tensor(np.array(pair[k])) for k in PAIR_KEYS}


def collate_pairs(pairs: list) -> dict:
    """Stack a list of torch pair dicts into a batch with a leading B (all images one size, one M)."""
    if not pairs:
        raise ValueError("collate_pairs: empty list")
    shapes = {tuple(p["rgb_a"].shape) for p in pairs} | {tuple(p["rgb_b"].shape) for p in pairs}
    if len(shapes) != 1:
        raise ValueError(f"collate_pairs: images differ in size {sorted(shapes)}; use RGBDDataset(image_size=...)")
    ms = {p["uv_a"].shape[0] for p in pairs}
    if len(ms) != 1:
        raise ValueError(f"collate_pairs: pairs have different numbers of correspondences {sorted(ms)}")
    ks = {p["neg_uv_a"].shape[0] for p in pairs} | {p["neg_uv_b"].shape[0] for p in pairs}
    if len(ks) != 1:
        raise ValueError(f"collate_pairs: pairs have different numbers of negatives {sorted(ks)}")
    return {k: torch.stack([torch.as_tensor(p[k]) for p in pairs]) for k in PAIR_KEYS}


class PairDataset(torch.utils.data.Dataset):
    """Training pairs over an :class:`~.dataset.RGBDDataset`.

    Args:
        dataset: the views.
        mode: "augment" (one item per view, the paper's pairs), "multiview" (one item per ordered pair of
            views of one scene; needs ``views_per_scene >= 2`` at generation) or "mixed" (the multiview items;
            each is made, with probability ``augment_fraction``, as an augmentation pair of its first view instead).
        augment_fraction: share of augmentation pairs in mode "mixed".
        cross_scene_fraction: modes "multiview" and "mixed": share of the multi-view pairs whose second view comes
            from another scene (:func:`make_cross_scene_pair`, a view drawn at random among those of the other
            scenes; needs the target's pose in every view and two scenes or more).
        num_correspondences: M.
        seed: item ``i`` of epoch ``e`` uses ``numpy.random.default_rng([seed, e, i])``: reproducible, and
            independent of DataLoader workers. Call :meth:`set_epoch` for fresh augmentations each epoch.
        augment, jitter: configs; ``jitter=JitterConfig.off()`` disables colour changes (both modes jitter).
        num_negatives: K off-target pixels per view (``neg_uv_a/b``, ``neg_valid_a/b``); 0 gives ``(0, 2)`` /
            ``(0,)`` arrays and draws no random numbers (pairs as without negatives).
        multiview_background: multi-view (and cross-scene) pairs also get ``augment``'s background replacement,
            each view independently (by default only augmentation pairs do).
        negative_margin_px: the negatives keep this many pixels away from the target (:func:`sample_negatives`).
        crop: optional ``(h, w)``: every view is first cut to a window of this size around its target
            (:func:`crop_around_target`, each view of a pair independently), so a training step costs the crop's
            pixels instead of the whole image's; None (default) = whole views.
    """

    def __init__(self, dataset, mode: str = "augment", num_correspondences: int = 128, seed: int = 0,
                 augment: AugmentConfig | None = None, jitter: JitterConfig | None = None, num_negatives: int = 0,
                 augment_fraction: float = 0.5, cross_scene_fraction: float = 0.0,
                 multiview_background: bool = False, negative_margin_px: int = NEGATIVE_MARGIN_PX,
                 crop=None):
        if mode not in ("augment", "multiview", "mixed"):
            raise ValueError(f"PairDataset: mode must be 'augment', 'multiview' or 'mixed', got {mode!r}")
        if not 0.0 <= augment_fraction <= 1.0:
            raise ValueError(f"PairDataset: augment_fraction must be in [0, 1], got {augment_fraction}")
        self.augment_fraction = float(augment_fraction)
        if not 0.0 <= cross_scene_fraction <= 1.0:
            raise ValueError(f"PairDataset: cross_scene_fraction must be in [0, 1], got {cross_scene_fraction}")
        self.cross_scene_fraction = float(cross_scene_fraction)
        self.multiview_background = bool(multiview_background)
        if num_correspondences < 1:
            raise ValueError(f"PairDataset: num_correspondences must be >= 1, got {num_correspondences}")
        if num_negatives < 0:
            raise ValueError(f"PairDataset: num_negatives must be >= 0, got {num_negatives}")
        self.dataset, self.mode, self.m, self.seed = dataset, mode, num_correspondences, seed
        self.num_negatives = int(num_negatives)
        if negative_margin_px < 0:
            raise ValueError(f"PairDataset: negative_margin_px must be >= 0, got {negative_margin_px}")
        self.negative_margin_px = int(negative_margin_px)
        if crop is not None and not (len(crop) == 2 and all(int(c) >= 8 for c in crop)):
            raise ValueError(f"PairDataset: crop must be None or (h, w) with both >= 8 pixels, got {crop!r}")
        self.crop = None if crop is None else (int(crop[0]), int(crop[1]))
        self.augment = augment or AugmentConfig()
        self.jitter = JitterConfig() if jitter is None else jitter
        self.background_files = (list_background_images(self.augment.background_dir)
                                 if self.augment.background_dir else None)
        self.epoch = 0
        if mode in ("multiview", "mixed"):
            scenes = dataset.scenes()
            self.pairs = [(a, b) for ids in scenes.values() for a in ids for b in ids if a != b]
            if not self.pairs:
                raise ValueError(f"PairDataset: no scene of {getattr(dataset, 'root', dataset)} has two views; "
                                 "generate with --views-per-scene 2 or more for multi-view pairs")
            # views scene by scene, and each view's scene as a block [start, end) of that list: the views of the
            # other scenes are the list without the block (drawn in O(1) per cross-scene pair)
            self.views_by_scene = [i for ids in scenes.values() for i in ids]
            self.scene_block, start = {}, 0
            for ids in scenes.values():
                self.scene_block.update({i: (start, start + len(ids)) for i in ids})
                start += len(ids)
            if self.cross_scene_fraction > 0 and len(scenes) < 2:
                raise ValueError(f"PairDataset: cross_scene_fraction > 0 needs two scenes or more in "
                                 f"{getattr(dataset, 'root', dataset)}")

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset) if self.mode == "augment" else len(self.pairs)

    def numpy_pair(self, index: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, index])
        if self.mode == "augment":
            return make_augmentation_pair(self._view(index, rng), rng, self.m, self.augment, self.jitter,
                                          background_files=self.background_files, **self._negatives())
        a, b = self.pairs[index]
        if self.mode == "mixed" and rng.random() < self.augment_fraction:
            return make_augmentation_pair(self._view(a, rng), rng, self.m, self.augment, self.jitter,
                                          background_files=self.background_files, **self._negatives())
        if self.cross_scene_fraction > 0 and rng.random() < self.cross_scene_fraction:
            start, end = self.scene_block[a]
            k = int(rng.integers(len(self.views_by_scene) - (end - start)))
            b = self.views_by_scene[k if k < start else k + end - start]
            return make_cross_scene_pair(self._view(a, rng), self._view(b, rng), rng, self.m, self.jitter,
                                         **self._negatives(), **self._background())
        return make_multiview_pair(self._view(a, rng), self._view(b, rng), rng, self.m, self.jitter,
                                   **self._negatives(), **self._background())

    def _view(self, index: int, rng: np.random.Generator) -> dict:
        """View ``index`` as a numpy sample, cut to ``crop`` around its target when set (draws nothing otherwise)."""
        sample = self.dataset.load_numpy(index)
        return sample if self.crop is None else crop_around_target(sample, self.crop, rng)

    def _negatives(self) -> dict:
        """The pair makers' negative-sampling arguments."""
        return {"num_negatives": self.num_negatives, "negative_margin_px": self.negative_margin_px}

    def _background(self) -> dict:
        """make_multiview_pair's background arguments (none unless multiview_background)."""
        return {"augment": self.augment, "background_files": self.background_files} if self.multiview_background \
            else {}

    def __getitem__(self, index: int) -> dict:
        return pair_to_torch(self.numpy_pair(index))
