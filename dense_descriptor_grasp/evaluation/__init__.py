"""Evaluation of dense descriptors: standard PCK@k (`pck`) and the `evaluate_model` command (`evaluate`)."""
from .pck import (
    AUC_MAX_K,
    PCK_THRESHOLDS,
    best_match_pixels,
    correspondence_pixel_errors,
    pck_at_k,
    pck_auc,
    pck_curve,
    sample_descriptors,
    summarize_pixel_errors,
)

__all__ = [
    "AUC_MAX_K",
    "PCK_THRESHOLDS",
    "best_match_pixels",
    "correspondence_pixel_errors",
    "pck_at_k",
    "pck_auc",
    "pck_curve",
    "sample_descriptors",
    "summarize_pixel_errors",
]
