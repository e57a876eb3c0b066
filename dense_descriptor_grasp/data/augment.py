"""Spatial augmentation as a "virtual camera", photometric jitter and background replacement (numpy).

A view is augmented by a homography ``H = A_shift @ A_zoom @ K R K^-1`` applied to pixel coordinates:

* ``R`` rotates the camera (roll about the optical axis = image rotation about the principal point when
  ``fx = fy``; pan/tilt = the optional "perspective" warp). A pure rotation is an exact rigid camera motion:
  the depth of a point becomes ``(R X)_z``.
* ``A_zoom`` scales by ``s`` about the principal point; depth is divided by ``s`` (the virtual camera moves along
  its axis). Exact only for points at a single depth: a real move along the axis would magnify near points
  more than far ones.
* ``A_shift`` translates the image by ``t`` pixels; depth is kept. This equals a sideways camera move of
  ``t z / f`` only for points at depth ``z``; across an object of varying depth it is a shear, not a rigid motion.

RGB is sampled bilinearly, depth and mask with the nearest source pixel (depth then rescaled by the factor
above at that source pixel), so the warped pixel-coordinate grid ``source_uv`` states exactly which source
point every output pixel shows. See docs/DATA.md.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from ..geometry.se3 import so3_exp
from .backgrounds import make_background

__all__ = ["AugmentConfig", "JitterConfig", "VirtualCamera", "sample_virtual_camera", "warp_view", "warp_mask",
           "photometric_jitter", "replace_background", "rotation_about_axis", "sensor_noise_view"]


@dataclass
class AugmentConfig:
    """Ranges of the random virtual camera (uniform in +-value unless a range is given)."""

    rotation_deg: float = 180.0          # roll about the optical axis
    translation: float = 0.1             # image shift as a fraction of width / height
    scale: tuple = (0.8, 1.25)           # zoom range (log-uniform)
    perspective_deg: float = 0.0         # pan / tilt of the virtual camera (0 = off)
    background_prob: float = 0.5         # chance to replace the background of a view
    background_kinds: tuple = ("plain", "noise", "textured")
    background_dir: str | None = None    # adds "images" from this folder
    keep_background_depth: bool = False  # a replaced background keeps the scene's depth (set for depth-input
                                         # models: only the colour changes, as under another floor texture)

    def __post_init__(self):
        lo, hi = self.scale
        if not (0 < lo <= hi):
            raise ValueError(f"AugmentConfig.scale must satisfy 0 < lo <= hi, got {self.scale}")
        if not (0 <= self.translation < 1):
            raise ValueError(f"AugmentConfig.translation must be in [0, 1), got {self.translation}")
        if not (0 <= self.perspective_deg < 60):
            raise ValueError(f"AugmentConfig.perspective_deg must be in [0, 60), got {self.perspective_deg}")
        if not (0 <= self.background_prob <= 1):
            raise ValueError(f"AugmentConfig.background_prob must be in [0, 1], got {self.background_prob}")


@dataclass
class JitterConfig:
    """Photometric jitter strengths (0 turns a term off), applied per view of a pair in this order: brightness
    (gain ``1 +- brightness``), channel gain (each of R, G, B times ``1 +- channel_gain``: a tinted light or another
    white balance), contrast about the mean, saturation, hue shift (fraction of the hue circle), Gaussian noise.
    The defaults span a dim to a bright room (gain 0.6-1.4) and warm to cold light."""

    brightness: float = 0.4
    contrast: float = 0.4
    saturation: float = 0.4
    hue: float = 0.04          # fraction of the hue circle
    noise_std: float = 0.02    # additive Gaussian noise on [0, 1] colours
    channel_gain: float = 0.1  # per-channel gain (light colour / white balance)
    sensor_noise: float = 0.0  # chance that a view first gets capture.noise's RGB-D sensor noise (sensor_noise_view)

    def __post_init__(self):
        if not (0.0 <= self.sensor_noise <= 1.0):
            raise ValueError(f"JitterConfig.sensor_noise must be a probability in [0, 1], got {self.sensor_noise}")

    @classmethod
    def off(cls) -> "JitterConfig":
        return cls(brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, noise_std=0.0, channel_gain=0.0)


def sensor_noise_view(rgb: np.ndarray, depth: np.ndarray, K, rng: np.random.Generator, config: JitterConfig):
    """With probability ``config.sensor_noise``, the view as a RealSense-like camera would give it
    (``capture.noise.apply_rgbd_noise`` with its default model: depth noise growing with distance, dropouts at
    edges, in the stereo shadow and on dark surfaces, 1 mm steps, colour noise); otherwise unchanged.

    Applied after the pair's correspondences are computed (they come from the clean depth), so only what the
    network sees changes. ``rgb (H, W, 3)`` float32 [0, 1], ``depth (H, W)`` metres, ``K (3, 3)``.
    Returns ``rgb, depth`` (float32).
    """
    if config.sensor_noise <= 0 or rng.random() >= config.sensor_noise:
        return rgb, depth
    from dense_descriptor_grasp.capture.noise import NoiseConfig, apply_rgbd_noise

    rgb8 = np.clip(np.rint(np.asarray(rgb, np.float32) * 255.0), 0, 255).astype(np.uint8)
    noisy_rgb, noisy_depth = apply_rgbd_noise(rgb8, np.asarray(depth, np.float32), rng, NoiseConfig(),
                                              K=np.asarray(K, np.float64))
    return noisy_rgb.astype(np.float32) / 255.0, noisy_depth.astype(np.float32)


def rotation_about_axis(axis, angle: float) -> np.ndarray:
    """``(3, 3)`` rotation by ``angle`` radians about unit ``axis`` (Rodrigues)."""
    a = np.asarray(axis, dtype=np.float64)
    return so3_exp(a / np.linalg.norm(a) * float(angle))


@dataclass
class VirtualCamera:
    """Augmentation of one view: points move ``X_virtual = R X`` (then zoom ``scale``, image shift ``shift`` px)."""

    R: np.ndarray = field(default_factory=lambda: np.eye(3))
    scale: float = 1.0
    shift: np.ndarray = field(default_factory=lambda: np.zeros(2))

    def homography(self, K: np.ndarray) -> np.ndarray:
        """``(3, 3)`` map from source pixels (homogeneous) to augmented pixels."""
        K = np.asarray(K, dtype=np.float64)
        cx, cy, s = K[0, 2], K[1, 2], self.scale
        zoom = np.array([[s, 0, cx * (1 - s)], [0, s, cy * (1 - s)], [0, 0, 1.0]])
        shift = np.array([[1, 0, self.shift[0]], [0, 1, self.shift[1]], [0, 0, 1.0]])
        return shift @ zoom @ K @ self.R @ np.linalg.inv(K)

    def depth_factor(self, K: np.ndarray, uv_source: np.ndarray) -> np.ndarray:
        """``(...,)`` factor turning source depth at ``uv_source (..., 2)`` into the virtual camera's depth."""
        K = np.asarray(K, dtype=np.float64)
        x = (uv_source[..., 0] - K[0, 2]) / K[0, 0]
        y = (uv_source[..., 1] - K[1, 2]) / K[1, 1]
        r3 = self.R[2]
        return (r3[0] * x + r3[1] * y + r3[2]) / self.scale

    def map_points(self, K: np.ndarray, uv_source: np.ndarray) -> np.ndarray:
        """Augmented pixel coordinates ``(N, 2)`` of source pixels ``(N, 2)``."""
        return apply_homography(self.homography(K), uv_source)


def apply_homography(H: np.ndarray, uv: np.ndarray) -> np.ndarray:
    """``(..., 2)`` image of pixels ``uv (..., 2)`` under the homography ``H (3, 3)``."""
    uv = np.asarray(uv, dtype=np.float64)
    w = H[2, 0] * uv[..., 0] + H[2, 1] * uv[..., 1] + H[2, 2]
    u = (H[0, 0] * uv[..., 0] + H[0, 1] * uv[..., 1] + H[0, 2]) / w
    v = (H[1, 0] * uv[..., 0] + H[1, 1] * uv[..., 1] + H[1, 2]) / w
    return np.stack([u, v], axis=-1)


def sample_virtual_camera(rng: np.random.Generator, config: AugmentConfig, size) -> VirtualCamera:
    """A random :class:`VirtualCamera` for an image of ``size = (H, W)``."""
    H, W = size
    roll = math.radians(rng.uniform(-config.rotation_deg, config.rotation_deg))
    R = rotation_about_axis([0, 0, 1], roll)
    if config.perspective_deg > 0:
        pan = math.radians(rng.uniform(-config.perspective_deg, config.perspective_deg))
        tilt = math.radians(rng.uniform(-config.perspective_deg, config.perspective_deg))
        R = rotation_about_axis([0, 1, 0], pan) @ rotation_about_axis([1, 0, 0], tilt) @ R
    lo, hi = config.scale
    scale = math.exp(rng.uniform(math.log(lo), math.log(hi)))
    shift = rng.uniform(-config.translation, config.translation, size=2) * np.array([W, H])
    return VirtualCamera(R, scale, shift)


def warp_view(rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray, K: np.ndarray, cam: VirtualCamera):
    """Apply ``cam`` to one view.

    Args:
        rgb: ``(H, W, 3)`` float32 in [0, 1] (or uint8); bilinear.
        depth: ``(H, W)`` float32 metres, 0 = invalid; nearest source pixel, times ``cam.depth_factor``.
        mask: ``(H, W)`` bool; nearest.
        K: ``(3, 3)`` intrinsics (shared by source and virtual camera).
    Returns:
        ``rgb, depth, mask, source_uv`` where ``source_uv (H, W, 2)`` float32 is the warped pixel-coordinate
        grid (the source point each output pixel shows; outside the source: depth 0, mask False, rgb 0).
    """
    import cv2

    h, w = depth.shape
    Hinv = np.linalg.inv(cam.homography(K))
    v, u = np.mgrid[0:h, 0:w].astype(np.float64)
    src = apply_homography(Hinv, np.stack([u, v], axis=-1))
    mapx, mapy = src[..., 0].astype(np.float32), src[..., 1].astype(np.float32)
    rgb_w = cv2.remap(rgb, mapx, mapy, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    iu, iv = np.rint(src[..., 0]).astype(np.int64), np.rint(src[..., 1]).astype(np.int64)
    inside = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    iu_c, iv_c = np.clip(iu, 0, w - 1), np.clip(iv, 0, h - 1)
    factor = cam.depth_factor(K, np.stack([iu_c, iv_c], axis=-1).astype(np.float64))
    depth_w = np.where(inside, depth[iv_c, iu_c] * factor, 0.0).astype(np.float32)
    depth_w[depth_w < 0] = 0.0
    mask_w = inside & mask[iv_c, iu_c]
    return rgb_w, depth_w, mask_w, src.astype(np.float32)


def warp_mask(mask: np.ndarray, source_uv: np.ndarray):
    """Warp another ``(H, W)`` bool mask with the grid ``source_uv`` of :func:`warp_view` (nearest source pixel,
    as ``warp_view`` warps its mask). Returns ``(mask_w, inside)``: ``inside`` = the output pixel shows a source
    pixel (False in the black border)."""
    h, w = mask.shape
    iu, iv = np.rint(source_uv[..., 0]).astype(np.int64), np.rint(source_uv[..., 1]).astype(np.int64)
    inside = (iu >= 0) & (iu < w) & (iv >= 0) & (iv < h)
    return inside & mask[np.clip(iv, 0, h - 1), np.clip(iu, 0, w - 1)], inside


def photometric_jitter(rgb: np.ndarray, rng: np.random.Generator, config: JitterConfig) -> np.ndarray:
    """Brightness, contrast, saturation, hue and noise jitter of a float32 ``(H, W, 3)`` [0, 1] image."""
    import cv2

    img = rgb.astype(np.float32, copy=True)
    if config.brightness > 0:
        img *= rng.uniform(1 - config.brightness, 1 + config.brightness)
    if config.channel_gain > 0:
        img *= rng.uniform(1 - config.channel_gain, 1 + config.channel_gain, size=3).astype(np.float32)
    if config.contrast > 0:
        mean = img.mean()
        img = (img - mean) * rng.uniform(1 - config.contrast, 1 + config.contrast) + mean
    if config.saturation > 0:
        gray = img @ np.array([0.299, 0.587, 0.114], dtype=np.float32)
        img = (img - gray[..., None]) * rng.uniform(1 - config.saturation, 1 + config.saturation) + gray[..., None]
    img = np.clip(img, 0, 1)
    if config.hue > 0:
        hsv = cv2.cvtColor(img, cv2.COLOR_RGB2HSV)
        hsv[..., 0] = (hsv[..., 0] + 360.0 * rng.uniform(-config.hue, config.hue)) % 360.0
        img = cv2.cvtColor(hsv, cv2.COLOR_HSV2RGB)
    if config.noise_std > 0:
        img += np.float32(config.noise_std) * rng.standard_normal(size=img.shape, dtype=np.float32)
    return np.clip(img, 0, 1).astype(np.float32)


def replace_background(rgb: np.ndarray, depth: np.ndarray, mask: np.ndarray, rng: np.random.Generator,
                       kinds, files=None, keep_depth: bool = False):
    """Paint a random background behind the mask; depth there becomes 0 (unknown) unless ``keep_depth``.
    Returns ``rgb, depth``."""
    h, w = mask.shape
    kind = str(rng.choice(list(kinds)))
    bg = make_background(kind, h, w, rng, files).astype(np.float32) / 255.0
    rgb = np.where(mask[..., None], rgb, bg).astype(np.float32)
    if not keep_depth:
        depth = np.where(mask, depth, 0.0)
    return rgb, np.asarray(depth, dtype=np.float32)
