"""Named training recipes: ``train_model --preset NAME`` applies one before ``--set`` overrides and flags.

One home for the methods that the README's quality table, the time-to-quality benchmark and ``make demo``
compare, so all three train exactly the same thing:

* ``paper`` -- the paper's method: the KeypointNet task (five losses) on augmentation pairs, on the same
  feature-pyramid decoder as the others (decoder ``fpn``, stride 4).
* ``ntxent`` -- the Dense Object Nets baseline: pixelwise NT-Xent whose negatives are the other sampled
  correspondences only (Adrian et al. 2022), on two rendered views, same decoder.
* ``clutter`` -- NT-Xent with off-object negatives (background and distractor pixels) on two rendered views of
  cluttered scenes, same decoder.
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
    "clutter": _FPN + ["model.method=ntxent", "data.mode=multiview", "data.num_negatives=512",
                       "losses.ntxent_negatives=true"],
    "paper_stride32": ["model.decoder=none", "model.output_stride=32", "model.method=keypoint", "data.mode=augment",
                       "data.num_negatives=0", "losses.ntxent=0.0"],
}


def preset_overrides(name: str) -> list:
    """The overrides of preset ``name`` (``ValueError`` naming the known presets otherwise)."""
    if name not in PRESETS:
        raise ValueError(f"--preset: unknown preset {name!r}; known presets: {sorted(PRESETS)}")
    return list(PRESETS[name])
