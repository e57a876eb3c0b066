"""Step 3, evaluate: the semantic-point evaluation of the demo's model on the held-out set, beside both floors."""
from __future__ import annotations

import json
import time

from .settings import OBJECT, DemoSettings, log, step_label
from .train import read_train_state


SUMMARY_KEYS = ("matches", "median_px", "pck_3", "pck_5", "pck_10", "median_mm", "within_10mm", "depth_misses")


def semantic_summary(report: dict, model_name: str) -> dict:
    """The part of a semantic-point report the demo keeps (results.json, the summary line)."""
    from dense_descriptor_grasp.evaluation.semantic import FLOOR_CENTROID, FLOOR_UNTRAINED

    methods = report["methods"]
    info = methods[model_name].get("info", {})
    return {
        "model": model_name,
        "model_identity": info.get("identity"),
        "checkpoint_step": info.get("step"),
        "dataset": report["settings"]["dataset"],
        "views": report["dataset"]["num_views"],
        "views_evaluated": report["dataset"]["num_views_evaluated"],
        "scenes_evaluated": report["dataset"]["num_scenes_evaluated"],
        "report": (report.get("files") or {}).get("report"),
        "methods": {n: {k: methods[n].get(k) for k in SUMMARY_KEYS}
                    for n in (model_name, FLOOR_UNTRAINED, FLOOR_CENTROID) if n in methods},
    }


def _model_name(s: DemoSettings) -> str:
    """The trained model's row in the evaluation table: its preset when the demo trained it, else ``model``."""
    state = read_train_state(s)
    return str(state["preset"]) if state and state.get("preset") else "model"


def step_evaluate(s: DemoSettings) -> dict:
    """The semantic-point evaluation of ``last.pt`` on the held-out set, with both floors; prints the table.

    Skipped when ``<out>/clutter_eval/semantic_report.json`` was made for this model (identity) and this dataset,
    after the dataset was last rendered.
    Returns :func:`semantic_summary` of the report.
    """
    from dense_descriptor_grasp.evaluation.semantic import REPORT_NAME, format_table, semantic_point_evaluation
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint

    step = step_label("evaluate")
    name = _model_name(s)
    identity = str(load_checkpoint(s.checkpoint).get("model_identity", ""))
    dataset = s.path(s.eval_dataset)
    path = s.eval_dir / REPORT_NAME
    report = None
    if path.is_file():
        try:
            old = json.loads(path.read_text())
            manifest = dataset / "manifest.json"
            newer = manifest.is_file() and path.stat().st_mtime >= manifest.stat().st_mtime
            if newer and old["settings"]["dataset"] == str(dataset) and \
                    (old["methods"].get(name) or {}).get("info", {}).get("identity") == identity:
                report = old
                log(f"{step}: {path} exists for model {identity} on {dataset} - skipped")
        except (ValueError, KeyError, TypeError):
            report = None
    if report is None:
        log(f"{step}: semantic-point evaluation of {s.checkpoint} ({name!r}) on the held-out set {dataset}: the "
            f"{OBJECT}'s named parts matched over whole cluttered images it never saw, references from another "
            f"scene; floors: the untrained network and the target-mask centroid")
        t0 = time.perf_counter()
        report = semantic_point_evaluation({name: str(s.checkpoint)}, str(dataset), object_name=OBJECT,
                                           device=s.device, include_floors=True, seed=s.seed, out_dir=s.eval_dir)
        log(f"{step}: {report['dataset']['num_views_evaluated']} views of {report['dataset']['num_scenes_evaluated']} "
            f"scenes in {time.perf_counter() - t0:.1f} s -> {path}, {s.eval_dir / 'semantic_matches.png'}")
    for line in (report.get("table_markdown") or format_table(report)).splitlines():
        print(line, flush=True)
    return semantic_summary(report, name)
