"""Named training recipes: ``train_model --preset NAME`` applies one before ``--set`` overrides and flags.

One home for the methods that the README's quality table, the time-to-quality benchmark and ``make demo``
compare, so all three train exactly the same thing:

* ``paper`` -- the paper's method: the KeypointNet task (five losses) on augmentation pairs, on the same
  feature-pyramid decoder as the others (decoder ``fpn``, stride 4).
* ``ntxent`` -- the Dense Object Nets baseline: pixelwise NT-Xent whose negatives are the other sampled
  correspondences only (Adrian et al. 2022), on two rendered views, same decoder.
* ``clutter`` -- the default of ``make demo``: NT-Xent with off-object negatives (1024 background and distractor
  pixels per view) and 1024 correspondences, neighbours within 3 px of the positive not counted as negatives,
  plus the geometry term (``losses.coords``: descriptors pulled towards an embedding of each pixel's point on the
  object), on a mix of two-view pairs of cluttered scenes and augmentation pairs (roll +-30 deg), lr 1e-3, same
  decoder; at inference BatchNorm normalises each image by its own statistics (``model.norm_statistics=image``,
  as training with one pair per batch sees them; better on all three checkpoints it was measured on, README).
  Chosen from 10-minute runs on this 2-core CPU (README, "Descriptor quality on held-out clutter").
* ``clutter_rgbd`` -- ``clutter`` with a network that also reads the depth image (``model.input=rgbd``: surface
  normals and relative depth next to RGB, so the geometry of a part counts as well as its colour).
* ``paper_stride32`` -- the paper's own network: no decoder, bilinear upsampling of the stride-32 projection
  (the setting of the memory table).

Each preset is a list of ``section.key=value`` overrides (values parsed as YAML), applied on top of the config file.
"""
from __future__ import annotations

__all__ = ["PRESETS", "preset_overrides"]

_FPN = ["model.decoder=fpn", "model.output_stride=4"]

PRESETS: dict = {
    "paper": _FPN + ["model.method=keypoint", "data.mode=augment", "data.num_negatives=0", "losses.ntxent=0.0"],
    "ntxent": _FPN + ["model.method=ntxent", "data.mode=multiview", "data.num_negatives=0",
                      "losses.ntxent_negatives=false"],
    "clutter": _FPN + ["model.method=ntxent", "model.norm_statistics=image", "data.mode=mixed", "data.augment={rotation_deg: 30.0}",
                       "data.num_correspondences=1024", "data.num_negatives=1024", "losses.ntxent_negatives=true",
                       "losses.ntxent_exclude_px=3.0", "losses.coords=1.0", "optim.lr=1.0e-3"],
    "clutter_rgbd": _FPN + ["model.input=rgbd", "model.method=ntxent", "model.norm_statistics=image", "data.mode=mixed",
                            "data.augment={rotation_deg: 30.0}", "data.num_correspondences=1024",
                            "data.num_negatives=1024", "losses.ntxent_negatives=true", "losses.ntxent_exclude_px=3.0",
                            "losses.coords=1.0", "optim.lr=1.0e-3"],
    "paper_stride32": ["model.decoder=none", "model.output_stride=32", "model.method=keypoint", "data.mode=augment",
                       "data.num_negatives=0", "losses.ntxent=0.0"],
}


def preset_overrides(name: str) -> list:
    """The overrides of preset ``name`` (``ValueError`` naming the known presets otherwise)."""
    if name not in PRESETS:
        raise ValueError(f"--preset: unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return list(PRESETS[name])
