"""Step 2, train: a training preset into the demo's model folder with ``train_model``, which owns the wall-clock
budget across resumes; a demo model of another preset is set aside."""
from __future__ import annotations

import json

from dense_descriptor_grasp.atomic_io import atomic_write_json
from dense_descriptor_grasp.training.presets import preset_overrides

from .settings import TRAIN_STATE, DemoSettings, log, step_label


def read_train_state(s: DemoSettings) -> dict | None:
    path = s.path(s.model_dir) / TRAIN_STATE
    return json.loads(path.read_text()) if path.is_file() else None


def write_train_state(s: DemoSettings, state: dict) -> None:
    atomic_write_json(s.path(s.model_dir) / TRAIN_STATE, {"preset": s.preset, **state}, indent=1)


def training_overrides(s: DemoSettings, budget_minutes: float) -> list:
    """The preset's overrides, then ``data.num_correspondences`` (unless the preset sets it) and the demo's own:
    dataset, split, run folder, budget (``train.max_minutes``: all runs of the folder together), seed, device,
    checkpointing."""
    overrides = preset_overrides(s.preset)
    if not any(o.split("=", 1)[0].strip() == "data.num_correspondences" for o in overrides):
        overrides.append(f"data.num_correspondences={s.num_correspondences}")
    overrides += [
        f"data.dataset={json.dumps(str(s.path(s.dataset)))}",
        f"data.split={json.dumps(s.split)}",
        f"train.out={json.dumps(str(s.path(s.model_dir)))}",
        f"train.max_minutes={budget_minutes:.4f}",
        f"train.checkpoint_every={s.checkpoint_every}",
        f"train.device={json.dumps(s.device)}",
        f"train.num_threads={s.threads if s.threads == 'auto' else int(s.threads)}",
        f"train.precision={s.precision}",
        f"train.seed={s.seed}",
        f"train.tensorboard={'true' if s.tensorboard else 'false'}",
    ]
    if s.max_steps is not None:
        overrides.append(f"train.steps={s.max_steps}")
    if s.quick:
        # two training steps: normalised by each image's own statistics, a network this close to its random start
        # matches too ambiguously for the grasp node's ratio test, and --quick checks the pipeline end to end,
        # published grasps included; the running statistics of two steps leave it nearly unnormalised
        overrides.append("model.norm_statistics=running")
    return overrides


_ARCHITECTURE = ("method", "decoder", "output_stride", "descriptor_dim", "input")
_ARCHITECTURE_DEFAULTS = {"decoder": "none", "input": "rgb"}   # keys an older model_config leaves out
_MISSING = "(not recorded)"


def config_mismatch(checkpoint_info: dict, cfg, keys) -> list:
    """Where a checkpoint's model differs from what ``cfg`` trains: ``["model.decoder: 'none' (demo: 'fpn')", ...]``.

    Compares the network (``model_config``: method, decoder, output stride, D, input) and, in the training config stored
    with the checkpoint, every ``section.key`` of ``keys`` (the preset's overrides and the correspondence count),
    so that presets with one architecture (``clutter`` and ``ntxent``) are told apart too.
    """
    want = cfg.to_dict()
    model_config = checkpoint_info.get("model_config") or {}
    stored = checkpoint_info.get("config") or {}
    diffs = []
    for k in _ARCHITECTURE:
        have = model_config.get(k, _ARCHITECTURE_DEFAULTS.get(k, _MISSING))
        if have != want["model"][k]:
            diffs.append(f"model.{k}: {have!r} (demo: {want['model'][k]!r})")
    for key in dict.fromkeys(keys):
        section, name = key.split(".", 1)
        if section == "model" and name in _ARCHITECTURE:
            continue
        have = (stored.get(section) or {}).get(name, _MISSING)
        if have != want.get(section, {}).get(name):
            diffs.append(f"{key}: {have!r} (demo: {want[section][name]!r})")
    return diffs


def _checkpoint_label(checkpoint_info: dict, state: dict | None) -> str:
    if state and state.get("preset"):
        return str(state["preset"])
    mc = checkpoint_info.get("model_config") or {}
    return f"{mc.get('method')}_{mc.get('decoder', 'none')}_s{mc.get('output_stride')}"


def step_train(s: DemoSettings) -> dict:
    """Train preset ``s.preset`` into ``s.model_dir`` within ``s.train_minutes`` (all runs together).

    ``train_model`` owns the budget: ``train.max_minutes`` is the folder's total and the checkpoint records the
    minutes trained so far, so the demo passes its whole budget and resumes ``last.pt`` whenever its step and its
    minutes are below the budget (an interrupted run, or a larger ``--train-minutes``). ``last.pt`` without the
    demo's ``demo_train.json`` (a model put there by a user) is used as is. A demo-made ``last.pt`` whose model or
    training config differs from the preset's (:func:`config_mismatch`: another decoder, method, stride, or another
    preset's losses / negatives) is not resumed: it is renamed ``last_<its preset or method_decoder_stride>.pt``
    (never over an existing file) and training starts afresh.
    """
    from dense_descriptor_grasp.model.checkpoint import load_checkpoint
    from dense_descriptor_grasp.training.config import load_config
    from dense_descriptor_grasp.training.train import run_training, training_seconds

    step = step_label("train")
    ckpt = s.checkpoint
    state = read_train_state(s)
    cfg = load_config(None, training_overrides(s, s.train_minutes))
    keys = [o.split("=", 1)[0].strip() for o in preset_overrides(s.preset)] + ["data.num_correspondences"]
    if ckpt.is_file() and state is not None:
        info = load_checkpoint(ckpt)
        diffs = config_mismatch(info, cfg, keys)
        if diffs:
            label = _checkpoint_label(info, state)
            kept = ckpt.with_name(f"last_{label}.pt")
            k = 2
            while kept.exists():
                kept = ckpt.with_name(f"last_{label}_{k}.pt")
                k += 1
            log(f"{step}: {ckpt} holds a model the demo's preset {s.preset!r} does not train ({'; '.join(diffs)}) - "
                f"moved to {kept.name}, training afresh")
            ckpt.replace(kept)
            state = None
    resume = None
    if ckpt.is_file():
        info = load_checkpoint(ckpt)
        used = training_seconds(info) / 60.0
        if state is None or info["step"] >= cfg.train.steps or used >= s.train_minutes - 0.05:
            used_text = f", {used:.1f} of {s.train_minutes} min of training" if state else ", not made by the demo"
            log(f"{step}: {ckpt} exists (step {info['step']}{used_text}, model {info.get('model_identity')}) - "
                "skipped")
            return {"skipped": True, "step": int(info["step"])}
        resume = "auto"
        log(f"{step}: resuming the run from {ckpt} at step {info['step']} ({used:.1f} of {s.train_minutes} min "
            "trained)")
    m, d = cfg.model, cfg.data
    task = f"keypoint task N={m.num_keypoints}" if m.method == "keypoint" else "NT-Xent"
    if m.method == "ntxent" and d.num_negatives and cfg.losses.ntxent_negatives:
        task += f" with {d.num_negatives} off-object negatives per view"
    decoder = (f"FPN decoder, stride {m.output_stride}" if m.decoder == "fpn"
               else f"stride {m.output_stride}, no decoder")
    log(f"{step}: preset {s.preset!r}: {task} on {d.mode} pairs, {d.num_correspondences} correspondences "
        f"(ResNet-34, {decoder}, D={m.descriptor_dim}, batch {cfg.train.batch_size}, precision "
        f"{cfg.train.precision}) on {s.dataset}: up to step "
        f"{cfg.train.steps} or {s.train_minutes:.1f} min of training in all, whichever comes first, on {s.device} "
        f"-> {ckpt}")
    write_train_state(s, {"budget_minutes": s.train_minutes})   # marks last.pt as the demo's, with its preset
    summary = run_training(cfg, resume=resume, progress=True, log=log)
    if summary["status"] != "ok":
        raise RuntimeError(f"training stopped: {summary['status']} at step {summary['step']} (see {s.model_dir})")
    write_train_state(s, {"budget_minutes": s.train_minutes, "trained_minutes": round(summary["train_seconds"] / 60, 3),
                           "stop_reason": summary["stop_reason"], "step": summary["step"],
                           "final_losses": summary["final"]})
    log(f"{step}: {summary['steps_run']} steps in {summary['seconds']:.0f} s "
        f"({summary['seconds_per_step']:.2f} s/step), total step {summary['step']}, final loss "
        f"{summary['final'].get('total', float('nan')):.4g}; loss curve {summary['loss_curve']}")
    return summary
