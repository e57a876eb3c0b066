"""A documented RGB-D sensor noise model: an active-stereo camera like the Intel RealSense D435 (numpy only).

What it models, in the order :func:`apply_rgbd_noise` applies it (every effect is switched off by a zero):

1. **Depth noise growing with distance.** A stereo camera measures disparity ``d = f B / z``; a disparity error
   ``e`` pixels gives a depth error ``z^2 e / (f B)``, so the RMS depth error grows with the *square* of the
   distance (Intel, "Tuning depth cameras for best performance", the RMS-error formula
   ``z^2 * subpixel / (f * B)``). We use ``sigma(z) = depth_noise_a * z^2 + depth_noise_b`` with
   ``depth_noise_a = 0.01 1/m``: 0.9 mm at 0.3 m, 2.5 mm at 0.5 m, 1 % of the distance at 1 m and 2 % at 2 m, the
   D435 datasheet's RMS bound ("< 2 % at 2 m"). The formula with the D435's baseline (50 mm), focal length (~430 px
   at 848x480) and a subpixel error of 0.08-0.2 px gives a = 0.004-0.009 1/m in good conditions; 0.01 is the
   pessimistic end (textureless surfaces, lower resolutions). Part of the noise is spatially correlated (stereo
   matching windows make it "wavy" rather than per-pixel white): ``correlated_fraction`` of the variance comes from
   white noise smoothed over a ``correlation_px`` box, the rest is per pixel; the total std stays ``sigma(z)``.
2. **Missing depth at depth discontinuities.** Stereo matching windows straddle the silhouette of a foreground
   object: a pixel whose ``(2 edge_band_px + 1)^2`` neighbourhood spans a depth jump larger than ``edge_jump_m``
   loses its depth with probability ``edge_dropout``.
3. **The stereo shadow.** The D435's depth is registered to its left imager; background just to the *left* of a
   foreground object is hidden from the right imager (``stereo_baseline_m`` to the right) and has no depth. A pixel
   ``u`` with disparity ``d(u) = fx B / z(u)`` is hidden when some pixel ``u' > u`` of its row lands at or left of
   it in the right image: ``u' - d(u') <= u - d(u)``. The band is ``fx B (1/z_front - 1/z_back)`` pixels wide.
4. **Missing depth on dark surfaces.** Little of the projector's IR pattern comes back from dark (low-albedo)
   surfaces: a pixel whose colour luminance ``I`` (0-1, from the clean image) is below ``dark_level`` loses its
   depth with probability ``dark_dropout * (dark_level - I) / dark_level`` (black: ``dark_dropout``).
5. **Range.** Pixels whose true depth is outside ``[min_depth_m, max_depth_m]`` have no depth (the D435's
   minimum range is ~0.1-0.3 m depending on the resolution).
6. **Quantisation.** Depth is stored as 16-bit integers of ``depth_unit_m`` (0.001 m: the RealSense default
   depth scale, the ``16UC1`` millimetres of ROS): values are rounded to multiples of it.
7. **Colour noise.** Gaussian noise of ``rgb_noise_std`` (0-255 units) per channel and pixel, then rounding.

The effects are computed from the clean images (edges, shadow and darkness from the noise-free depth and
colour), so they do not depend on each other's random draws. Depth 0 (no depth) stays 0.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

__all__ = ["NoiseConfig", "apply_rgbd_noise", "depth_noise_std", "edge_pixels", "stereo_shadow"]


@dataclass(frozen=True)
class NoiseConfig:
    """Parameters of :func:`apply_rgbd_noise` (lengths in metres, images in 0-255 units). Defaults: a D435-like
    active stereo camera at 0.2-1 m (see the module docstring for the numbers and where they come from)."""

    depth_noise_a: float = 0.01          # sigma(z) = a z^2 + b  [1/m]
    depth_noise_b: float = 0.0           # [m]
    correlated_fraction: float = 0.5     # share of the depth-noise variance that is smooth over correlation_px
    correlation_px: int = 4              # box size of the correlated part (pixels)
    edge_jump_m: float = 0.02            # a neighbourhood spanning more than this is a depth edge
    edge_band_px: int = 1                # neighbourhood radius: the band around an edge is 2 * r + 1 pixels wide
    edge_dropout: float = 0.6            # probability an edge pixel loses its depth
    stereo_baseline_m: float = 0.05      # right imager's offset; 0 = no stereo shadow (D435: 50 mm)
    dark_level: float = 0.12             # luminance (0-1) below which depth starts to drop out
    dark_dropout: float = 0.9            # dropout probability of a black pixel
    min_depth_m: float = 0.1             # closer than this: no depth
    max_depth_m: float = 6.0             # farther than this: no depth
    depth_unit_m: float = 0.001          # quantisation step (0 = none)
    rgb_noise_std: float = 2.0           # colour noise std (0-255 units)

    def __post_init__(self):
        for name in ("depth_noise_a", "depth_noise_b", "edge_jump_m", "stereo_baseline_m", "dark_level",
                     "min_depth_m", "depth_unit_m", "rgb_noise_std"):
            if not (np.isfinite(getattr(self, name)) and getattr(self, name) >= 0):
                raise ValueError(f"NoiseConfig.{name} must be finite and >= 0, got {getattr(self, name)!r}")
        for name in ("correlated_fraction", "edge_dropout", "dark_dropout"):
            if not (0.0 <= getattr(self, name) <= 1.0):
                raise ValueError(f"NoiseConfig.{name} must be in [0, 1], got {getattr(self, name)!r}")
        if not (self.max_depth_m > self.min_depth_m):
            raise ValueError(f"NoiseConfig: need max_depth_m > min_depth_m, got {self.min_depth_m}, "
                             f"{self.max_depth_m}")
        if int(self.correlation_px) < 1 or int(self.edge_band_px) < 0 or self.dark_level >= 1.0:
            raise ValueError(f"NoiseConfig: need correlation_px >= 1, edge_band_px >= 0 and dark_level < 1, got "
                             f"{self.correlation_px}, {self.edge_band_px}, {self.dark_level}")

    @classmethod
    def none(cls) -> "NoiseConfig":
        """No noise at all: :func:`apply_rgbd_noise` returns copies of its inputs."""
        return cls(depth_noise_a=0.0, depth_noise_b=0.0, edge_dropout=0.0, stereo_baseline_m=0.0, dark_dropout=0.0,
                   min_depth_m=0.0, max_depth_m=float("inf"), depth_unit_m=0.0, rgb_noise_std=0.0)

    def as_dict(self) -> dict:
        """JSON-safe fields (``inf`` written as the string ``"inf"``)."""
        return {k: ("inf" if isinstance(v, float) and np.isinf(v) else v) for k, v in asdict(self).items()}


def depth_noise_std(z, config: NoiseConfig = NoiseConfig()) -> np.ndarray:
    """Depth noise std ``sigma(z) = a z^2 + b`` in metres, same shape as ``z`` (metres)."""
    z = np.asarray(z, dtype=np.float64)
    return config.depth_noise_a * z * z + config.depth_noise_b


def _box_mean(x: np.ndarray, k: int) -> np.ndarray:
    """Mean over a k x k box (edge-replicated borders), same shape as ``x`` (H, W)."""
    if k <= 1:
        return x.copy()
    lo = k // 2
    p = np.pad(x, ((lo, k - 1 - lo), (lo, k - 1 - lo)), mode="edge")
    c = np.cumsum(np.cumsum(p, axis=0), axis=1)
    c = np.pad(c, ((1, 0), (1, 0)))
    h, w = x.shape
    return (c[k:k + h, k:k + w] - c[:h, k:k + w] - c[k:k + h, :w] + c[:h, :w]) / (k * k)


def _window_extreme(x: np.ndarray, r: int, fn) -> np.ndarray:
    """``fn`` (np.maximum / np.minimum) over a (2r+1)^2 window, edge-replicated, same shape as ``x``."""
    if r <= 0:
        return x.copy()
    h, w = x.shape
    p = np.pad(x, r, mode="edge")
    out = p[r:r + h, r:r + w].copy()
    for dv in range(-r, r + 1):
        for du in range(-r, r + 1):
            fn(out, p[r + dv:r + dv + h, r + du:r + du + w], out=out)
    return out


def edge_pixels(depth: np.ndarray, jump_m: float, band_px: int) -> np.ndarray:
    """``(H, W)`` bool: valid pixels whose ``(2 band_px + 1)^2`` neighbourhood spans a depth jump > ``jump_m``
    (a neighbour without depth counts as a jump: silhouettes against nothing are edges too)."""
    d = np.asarray(depth, dtype=np.float64)
    valid = d > 0
    r = int(band_px)
    if r <= 0:
        return np.zeros(d.shape, dtype=bool)
    hi = _window_extreme(np.where(valid, d, -np.inf), r, np.maximum)
    lo = _window_extreme(np.where(valid, d, np.inf), r, np.minimum)
    any_invalid = _window_extreme((~valid).astype(np.float64), r, np.maximum) > 0
    return valid & ((hi - lo > jump_m) | any_invalid)


def stereo_shadow(depth: np.ndarray, fx: float, baseline_m: float) -> np.ndarray:
    """``(H, W)`` bool: pixels the right imager (``baseline_m`` to the right, along +x) cannot see.

    Pixel ``u`` with disparity ``d(u) = fx B / z(u)`` lands at ``u - d(u)`` in the right image; it is hidden when a
    pixel farther right in its row lands at or left of it: ``min_{u' > u} (u' - d(u')) <= u - d(u)``.
    """
    d = np.asarray(depth, dtype=np.float64)
    if baseline_m <= 0:
        return np.zeros(d.shape, dtype=bool)
    valid = d > 0
    h, w = d.shape
    u = np.arange(w, dtype=np.float64)[None, :]
    disp = np.where(valid, fx * baseline_m / np.where(valid, d, 1.0), 0.0)
    ur = np.where(valid, u - disp, np.inf)
    # running minimum from the right, shifted by one: the smallest right-image column of the pixels right of u
    rmin = np.minimum.accumulate(ur[:, ::-1], axis=1)[:, ::-1]
    right_of = np.concatenate([rmin[:, 1:], np.full((h, 1), np.inf)], axis=1)
    return valid & (right_of <= ur - 0.5)


def apply_rgbd_noise(rgb: np.ndarray, depth: np.ndarray, rng: np.random.Generator,
                     config: NoiseConfig = NoiseConfig(), K: np.ndarray | None = None):
    """Sensor-like colour and depth from clean (rendered) images.

    Args:
        rgb: (H, W, 3) uint8 clean colour.
        depth: (H, W) float depth in metres along the optical axis, 0 = no depth.
        rng: the random generator (the result is a deterministic function of its state).
        config: the noise model (module docstring); :meth:`NoiseConfig.none` returns copies of the inputs.
        K: (3, 3) intrinsics; only ``fx`` is used, for the stereo shadow (default: the shadow is computed with
            ``fx = W`` (a ~53 deg horizontal field of view) when ``K`` is not given).
    Returns:
        ``(rgb, depth)``: (H, W, 3) uint8 and (H, W) float32 metres, 0 = no depth.
    """
    rgb = np.asarray(rgb)
    d0 = np.asarray(depth, dtype=np.float64)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"apply_rgbd_noise: rgb must be (H, W, 3) uint8, got {rgb.shape} {rgb.dtype}")
    if d0.shape != rgb.shape[:2]:
        raise ValueError(f"apply_rgbd_noise: depth {d0.shape} and rgb {rgb.shape[:2]} differ in size")
    h, w = d0.shape
    valid = np.isfinite(d0) & (d0 > 0)
    d0 = np.where(valid, d0, 0.0)

    # 1. depth noise, part white and part smooth, std sigma(z)
    white = rng.standard_normal((h, w))
    k = int(config.correlation_px)
    smooth = _box_mean(rng.standard_normal((h, w)), k) * k        # unit variance away from the borders
    c = float(config.correlated_fraction)
    n = np.sqrt(1.0 - c) * white + np.sqrt(c) * smooth
    d = d0 + depth_noise_std(d0, config) * n

    # 2-4. dropouts from the clean images
    drop = np.zeros((h, w), dtype=bool)
    u_edge, u_dark = rng.random((h, w)), rng.random((h, w))
    if config.edge_dropout > 0 and config.edge_band_px > 0:
        drop |= edge_pixels(d0, config.edge_jump_m, config.edge_band_px) & (u_edge < config.edge_dropout)
    if config.stereo_baseline_m > 0:
        fx = float(K[0, 0]) if K is not None else float(w)
        drop |= stereo_shadow(d0, fx, config.stereo_baseline_m)
    if config.dark_dropout > 0 and config.dark_level > 0:
        lum = (0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]) / 255.0
        p_dark = config.dark_dropout * np.clip((config.dark_level - lum) / config.dark_level, 0.0, 1.0)
        drop |= u_dark < p_dark

    # 5-6. range and quantisation
    if config.depth_unit_m > 0:
        d = np.round(d / config.depth_unit_m) * config.depth_unit_m
    ok = valid & ~drop & (d0 >= config.min_depth_m) & (d0 <= config.max_depth_m) & (d > 0)
    d = np.where(ok, d, 0.0).astype(np.float32)

    # 7. colour noise
    if config.rgb_noise_std > 0:
        out_rgb = np.clip(np.round(rgb + rng.normal(0.0, config.rgb_noise_std, rgb.shape)), 0, 255).astype(np.uint8)
    else:
        out_rgb = rgb.copy()
    return out_rgb, d
