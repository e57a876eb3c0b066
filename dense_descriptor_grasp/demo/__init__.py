"""``make demo`` / ``demo``: the whole job end to end on a CPU, every step skipped when its result exists.

    demo                                  # data/demo_duck_clutter, data/demo_duck_eval, models/demo/, outputs/demo/
    demo --quick                          # tiny sizes and budgets (the test uses it)
    demo --preset paper --train-minutes 15 --poses 10 --device cpu

Steps (each prints what it does, and skips work already done, so a second run is quick):
  1. dataset    render the cluttered training set (the duck as target among 2-4 distractors of the "train" set,
                3 views per scene) into ``data/demo_duck_clutter`` and a held-out evaluation set (another seed,
                distractors of the disjoint "eval" set, 2 views per scene) into ``data/demo_duck_eval`` (resumable)
  2. train      train the descriptor model into ``models/demo/`` under a wall-clock budget (resumes a partial run):
                a training preset of training/presets.py, ``--preset clutter_rgbd`` by default (NT-Xent with
                off-object negatives on mixed pairs, feature-pyramid decoder at stride 4, the network reading the
                depth image's normals as well as RGB; ``--preset clutter``: the same on RGB alone)
  3. evaluate   the semantic-point evaluation of the trained model on the held-out set (evaluation/semantic.py):
                the duck's named parts found in cluttered scenes it never saw, beside the untrained network and the
                part-blind mask centroid; table printed, report in ``outputs/demo/clutter_eval/``
  4. reference  a reference for a named duck part (default ``head_top``) from a training view where it is
                visible, with every other visible named part and a few surface points (>= 3: the 6-DoF path)
  5. pipeline   the pip bringup's nodes (sim camera, descriptor node, grasp node) in this process; for a series
                of seeded object poses print the published grasp beside the true position of the part (mm)
  6. pictures   descriptor preview, match heatmap and the grasp on the image, as PNGs in ``outputs/demo/``, and
                ``results.json``
The last line is the summary: the held-out semantic-point error (px / mm, with both floors), then the sim
camera's median grasp error (mm) and how many poses were processed and got a grasp.
"""
from __future__ import annotations

from .cli import get_args_parser, main, settings_from_args
from .dataset import step_dataset
from .evaluate import semantic_summary, step_evaluate
from .pictures import step_pictures
from .pipeline import step_pipeline
from .reference import choose_reference_view, step_reference
from .settings import TRAIN_STATE, DemoSettings
from .summary import centre_error_mm, part_error_mm, summary_line
from .train import config_mismatch, step_train, training_overrides


__all__ = ["DemoSettings", "settings_from_args", "step_dataset", "step_train", "step_evaluate", "step_reference",
           "step_pipeline", "step_pictures", "training_overrides", "config_mismatch", "semantic_summary",
           "choose_reference_view", "part_error_mm", "centre_error_mm",
           "summary_line", "get_args_parser", "main", "TRAIN_STATE"]
