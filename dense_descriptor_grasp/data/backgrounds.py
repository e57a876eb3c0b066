"""Random background images: plain colour, noise, procedural textures, and images from a user's folder.

Used twice: as the texture of the rendered support plane / the sky behind the scene, and as replacement
backgrounds behind the object mask when pairs are augmented.
"""
from __future__ import annotations

import os

import numpy as np

__all__ = ["BACKGROUND_KINDS", "IMAGE_EXTENSIONS", "list_background_images", "make_background"]

BACKGROUND_KINDS = ("plain", "noise", "textured", "images")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp")


def list_background_images(folder: str) -> list:
    """Sorted paths of the images in ``folder``; ``ValueError`` naming the folder when there are none."""
    if not os.path.isdir(folder):
        raise ValueError(f"background folder {folder!r} does not exist")
    files = sorted(os.path.join(folder, f) for f in os.listdir(folder) if f.lower().endswith(IMAGE_EXTENSIONS))
    if not files:
        raise ValueError(f"background folder {folder!r} holds no images ({', '.join(IMAGE_EXTENSIONS)})")
    return files


def _resize(img: np.ndarray, height: int, width: int) -> np.ndarray:
    import cv2

    return cv2.resize(img, (width, height), interpolation=cv2.INTER_LINEAR)


def _noise(height, width, rng):
    """Smooth-ish colour noise: coarse random field upsampled plus fine noise."""
    cells = int(rng.integers(4, 32))
    coarse = rng.uniform(0, 255, size=(max(2, height // cells), max(2, width // cells), 3)).astype(np.float32)
    img = _resize(coarse, height, width) + rng.normal(0, rng.uniform(5, 30), size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _textured(height, width, rng):
    """Checkerboard or stripes in two random colours, random period and angle."""
    c0, c1 = rng.uniform(0, 255, size=3), rng.uniform(0, 255, size=3)
    period = rng.uniform(8, 48)
    angle = rng.uniform(0, np.pi)
    v, u = np.mgrid[0:height, 0:width].astype(np.float32)
    a = (u * np.cos(angle) + v * np.sin(angle)) / period
    b = (-u * np.sin(angle) + v * np.cos(angle)) / period
    if rng.random() < 0.5:
        sel = (np.floor(a) + np.floor(b)) % 2 == 0
    else:
        sel = np.floor(a) % 2 == 0
    img = np.where(sel[..., None], c0, c1) + rng.normal(0, 6, size=(height, width, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def _image(height, width, rng, files):
    import cv2

    path = files[int(rng.integers(len(files)))]
    img = cv2.imread(path, cv2.IMREAD_COLOR)
    if img is None:
        raise ValueError(f"background image {path!r} could not be read")
    img = img[:, :, ::-1]
    h, w = img.shape[:2]
    # random crop with the target aspect ratio, then resize
    scale = min(h / height, w / width) * rng.uniform(0.5, 1.0)
    ch, cw = max(1, int(height * scale)), max(1, int(width * scale))
    y0, x0 = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
    return np.ascontiguousarray(_resize(np.ascontiguousarray(img[y0:y0 + ch, x0:x0 + cw]), height, width))


def make_background(kind: str, height: int, width: int, rng: np.random.Generator,
                    files: list | None = None) -> np.ndarray:
    """``(height, width, 3)`` uint8 RGB background of ``kind`` (one of :data:`BACKGROUND_KINDS`)."""
    if kind == "plain":
        colour = rng.uniform(0, 255, size=3)
        return np.broadcast_to(colour.astype(np.uint8), (height, width, 3)).copy()
    if kind == "noise":
        return _noise(height, width, rng)
    if kind == "textured":
        return _textured(height, width, rng)
    if kind == "images":
        if not files:
            raise ValueError("background kind 'images' needs a list of image files (a background folder)")
        return _image(height, width, rng, files)
    raise ValueError(f"unknown background kind {kind!r}, expected one of {BACKGROUND_KINDS}")
