"""The trainer's data: endless batches of training pairs from a dataset folder (``data.pairs.PairDataset``).

``training/train.py`` takes any iterable of pair batches; :func:`pair_batches` is the one it builds from the config
when none is given.
"""
from __future__ import annotations

from pathlib import Path
from typing import Iterator

import torch

from .config import TrainConfig

__all__ = ["pair_batches"]


class _SkipBadPairs(torch.utils.data.Dataset):
    """Wraps a ``PairDataset``: an item whose pair cannot be made (``PairError``: object warped out of view, too few
    correspondences) is replaced by the next items, deterministically; after 20 failures in a row it raises."""

    def __init__(self, pairs):
        self.pairs = pairs

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, index: int) -> dict:
        from dense_descriptor_grasp.data.pairs import PairError

        last = None
        for k in range(20):
            try:
                return self.pairs[(index + k) % len(self.pairs)]
            except PairError as exc:
                last = exc
        raise ValueError(f"data: 20 consecutive items failed to make a pair, last error: {last}")


def pair_batches(cfg: TrainConfig, seed: int, progress: bool = False) -> Iterator[dict]:
    """Endless iterator of collated pair batches from ``data.pairs.PairDataset`` (new augmentations every epoch)."""
    if not cfg.data.dataset:
        raise ValueError("data.dataset: no dataset folder given (use --dataset PATH or set data.dataset in the config)")
    if not Path(cfg.data.dataset).exists():
        raise FileNotFoundError(f"data.dataset: no dataset at {cfg.data.dataset}")
    from dense_descriptor_grasp.data.augment import AugmentConfig, JitterConfig
    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.data.pairs import PairDataset, collate_pairs

    views = RGBDDataset(cfg.data.dataset, split=cfg.data.split, val_fraction=cfg.data.val_fraction,
                        image_size=cfg.data.image_size, validate=True, progress=progress)
    try:
        # a depth-input network must not learn "depth present = object" from painted-over backgrounds
        augment = AugmentConfig(**{"keep_background_depth": cfg.model.input == "rgbd", **cfg.data.augment})
    except TypeError as exc:
        raise ValueError(f"data.augment: {exc}") from None
    try:
        jitter = JitterConfig(**{**cfg.data.jitter, "sensor_noise": cfg.data.sensor_noise})
    except TypeError as exc:
        raise ValueError(f"data.jitter: {exc}") from None
    pairs = PairDataset(views, mode=cfg.data.mode, num_correspondences=cfg.data.num_correspondences, seed=seed,
                        augment=augment, jitter=jitter,
                        num_negatives=cfg.data.num_negatives, negative_margin_px=cfg.data.negative_margin_px,
                        crop=cfg.data.crop,
                        augment_fraction=cfg.data.augment_fraction,
                        cross_scene_fraction=cfg.data.cross_scene_fraction,
                        multiview_background=cfg.data.multiview_background)
    if len(pairs) == 0:
        raise ValueError(f"data.dataset: {cfg.data.dataset} yields no training pairs")
    generator = torch.Generator().manual_seed(seed)
    loader = torch.utils.data.DataLoader(
        _SkipBadPairs(pairs),
        batch_size=cfg.train.batch_size,
        shuffle=True,
        drop_last=len(pairs) >= cfg.train.batch_size,
        num_workers=cfg.data.num_workers,
        collate_fn=collate_pairs,
        generator=generator,
    )
    epoch = 0
    while True:
        pairs.set_epoch(epoch)  # workers are re-created per epoch (no persistent_workers) and see the new epoch
        yielded = False
        for batch in loader:
            yielded = True
            yield batch
        if not yielded:
            raise ValueError(f"data.dataset: {cfg.data.dataset} produced no batch of size {cfg.train.batch_size}")
        epoch += 1
