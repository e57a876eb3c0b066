"""train_model: overfitting one batch, both methods through the CLI entry, --resume after a killed run, NaN stop."""
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

from dense_descriptor_grasp.model.checkpoint import load_checkpoint, load_model
from dense_descriptor_grasp.training.config import TrainConfig
from dense_descriptor_grasp.training.train import main, run_training

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def tiny_dataset(tmp_path_factory):
    """6 rendered duck views, 96 x 128, two per scene (pybullet, about a second)."""
    from dense_descriptor_grasp.data.generate import generate_dataset
    from dense_descriptor_grasp.data.render import RenderConfig

    root = tmp_path_factory.mktemp("data") / "duck"
    generate_dataset(str(root), ["duck"], num_views=6, views_per_scene=2, seed=0,
                     config=RenderConfig(width=128, height=96), progress=False)
    return str(root)


def _cli(dataset, out, *extra):
    return ["--dataset", dataset, "--out", str(out), "--descriptor-dim", "8", "--num-keypoints", "4",
            "--set", "data.val_fraction=0.0", "--set", "data.num_correspondences=32", "--set", "train.log_every=1",
            "--set", "train.image_every=1", "--no-progress", *extra]


def test_thirty_steps_on_one_batch_drive_the_loss_down(tmp_path, make_pair_batch):
    batch = make_pair_batch(batch_size=1, H=96, W=128, M=64)
    cfg = TrainConfig.from_dict({
        "model": {"descriptor_dim": 8, "num_keypoints": 4, "output_stride": 16},
        "optim": {"lr": 1.0e-3},
        "train": {"steps": 30, "out": str(tmp_path / "run"), "checkpoint_every": 100, "tensorboard": False, "seed": 0},
    })
    summary = run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    assert summary["status"] == "ok" and summary["step"] == 30
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert [row["step"] for row in history] == list(range(1, 31))
    first = sum(row["total"] for row in history[:3]) / 3
    last = sum(row["total"] for row in history[-5:]) / 5
    assert last < 0.3 * first, (first, last)
    assert (tmp_path / "run" / "loss_curve.png").stat().st_size > 1000
    assert (tmp_path / "run" / "history.csv").read_text().startswith("step,")


@pytest.mark.parametrize("method", ["keypoint", "ntxent"])
def test_both_methods_train_through_the_cli_entry(tiny_dataset, tmp_path, method):
    out = tmp_path / method
    assert main(_cli(tiny_dataset, out, "--method", method, "--steps", "2")) == 0
    model = load_model(out / "last.pt")
    assert model.method == method and model.descriptor_dim == 8
    assert model.checkpoint_info["step"] == 2
    assert model.checkpoint_info["config"]["train_input_size"] == [96, 128]
    assert model.checkpoint_info["metadata"]["dataset"] == tiny_dataset
    with torch.inference_mode():
        assert model.descriptors(torch.rand(1, 3, 96, 128)).shape == (1, 8, 96, 128)
    assert any(f.startswith("events.out.tfevents") for f in os.listdir(out / "tensorboard"))
    assert (out / "config.yaml").is_file() and (out / "loss_curve.png").is_file()


def test_depth_input_preset_trains_and_its_checkpoint_reads_depth(tiny_dataset, tmp_path):
    """--preset clutter_rgbd: pairs carry depth and K into the twin forward; the checkpoint records input 'rgbd'."""
    import numpy as np

    from dense_descriptor_grasp.data.dataset import RGBDDataset
    from dense_descriptor_grasp.model.inference import descriptor_image

    out = tmp_path / "rgbd"
    assert main(_cli(tiny_dataset, out, "--preset", "clutter_rgbd", "--steps", "2", "--set",
                     "data.num_negatives=16", "--set", "data.mode=augment")) == 0
    model = load_model(out / "last.pt")
    assert model.input == "rgbd" and model.checkpoint_info["config"]["model"]["input"] == "rgbd"
    view = RGBDDataset(tiny_dataset, split=None)[0]
    rgb = np.asarray(view["rgb"])
    rgb = rgb.transpose(1, 2, 0) if rgb.shape[0] == 3 else rgb
    rgb = rgb if rgb.dtype == np.uint8 else np.clip(np.rint(rgb * 255), 0, 255).astype(np.uint8)
    desc = descriptor_image(model, rgb, depth=view["depth"], K=view["K"])
    flat = descriptor_image(model, rgb, depth=np.full_like(view["depth"], float(np.median(view["depth"]))), K=view["K"])
    assert desc.shape == (8, 96, 128) and np.abs(desc - flat).max() > 1e-3


def test_zero_steps_writes_the_seeded_untrained_network(tiny_dataset, tmp_path):
    """``--steps 0``: the untrained network as a checkpoint (a floor for evaluate_model / grasp_sim), the same
    weights for the same seed, different ones for another seed."""
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        assert main(_cli(tiny_dataset, tmp_path / name, "--steps", "0", "--set", f"train.seed={seed}")) == 0
    a, b, c = (load_checkpoint(tmp_path / n / "last.pt") for n in "abc")
    assert a["step"] == 0 and load_model(tmp_path / "a" / "last.pt").descriptor_dim == 8
    key = "projection.weight"
    assert torch.equal(a["model_state"][key], b["model_state"][key])
    assert not torch.equal(a["model_state"][key], c["model_state"][key])


def test_resume_after_a_killed_run_continues_at_the_checkpoint_step(tiny_dataset, tmp_path):
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "dense_descriptor_grasp.training.train",
           *_cli(tiny_dataset, out, "--steps", "1000", "--checkpoint-every", "2")]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    ckpt_path = out / "last.pt"
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and proc.poll() is None:
            if ckpt_path.is_file():
                try:
                    if load_checkpoint(ckpt_path)["step"] >= 4:
                        break
                except Exception:  # being replaced right now: os.replace is atomic, so retry
                    pass
            time.sleep(0.3)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.stderr.close()
    saved = load_checkpoint(ckpt_path)  # the kill cannot leave a half-written checkpoint
    step = int(saved["step"])
    assert step >= 4 and step % 2 == 0

    assert main(["--out", str(out), "--resume", "--steps", str(step + 2), "--no-progress"]) == 0
    ckpt = load_checkpoint(ckpt_path)
    assert ckpt["step"] == step + 2
    # Adam counted every step across both runs, StepLR too
    adam_steps = {int(s["step"]) for s in ckpt["optimizer_state"]["state"].values()}
    assert adam_steps == {step + 2}
    assert ckpt["scheduler_state"]["last_epoch"] == step + 2
    history = json.loads((out / "history.json").read_text())
    assert [row["step"] for row in history] == list(range(1, step + 3))


def test_nan_loss_stops_with_a_clear_message_and_keeps_the_checkpoint(tmp_path, make_pair_batch):
    good = make_pair_batch(batch_size=1, H=64, W=64)
    bad = dict(good, K_a=torch.full_like(good["K_a"], float("nan")))
    cfg = TrainConfig.from_dict({
        "model": {"descriptor_dim": 4, "num_keypoints": 3, "output_stride": 16},
        "train": {"steps": 10, "out": str(tmp_path / "run"), "checkpoint_every": 2, "tensorboard": False},
    })
    messages = []
    summary = run_training(cfg, batches=iter([good, good, bad, good]), progress=False, log=messages.append)
    assert summary["status"] == "nan" and summary["step"] == 2
    assert any("non-finite loss at step 3" in m for m in messages)
    assert load_checkpoint(tmp_path / "run" / "last.pt")["step"] == 2


def test_bad_configuration_exits_with_code_2(tmp_path, capsys):
    assert main(["--out", str(tmp_path), "--set", "optim.lr=3e-4", "--steps", "1"]) == 2
    assert "3.0e-4" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--set", "model.colour=red"]) == 2
    assert "model.colour" in capsys.readouterr().err
    assert main(["--out", str(tmp_path), "--steps", "1"]) == 2  # no dataset
    assert "data.dataset" in capsys.readouterr().err


def test_a_fresh_run_into_a_folder_with_a_checkpoint_is_refused_unless_overwrite(tmp_path, capsys,
                                                                                 make_pair_batch):
    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    out = tmp_path / "run"
    cfg = TrainConfig.from_dict({
        "model": {"descriptor_dim": 4, "num_keypoints": 3, "output_stride": 32},
        "train": {"steps": 2, "out": str(out), "checkpoint_every": 100, "tensorboard": False, "seed": 0},
    })
    run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    before = (out / "last.pt").read_bytes()
    history = (out / "history.json").read_text()
    cfg.train.steps = 1
    with pytest.raises(FileExistsError, match="--resume.*--overwrite"):
        run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    assert (out / "last.pt").read_bytes() == before and (out / "history.json").read_text() == history
    assert main(["--out", str(out), "--steps", "1", "--dataset", str(tmp_path), "--no-progress"]) == 2
    assert "exists" in capsys.readouterr().err and (out / "last.pt").read_bytes() == before
    summary = run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None, overwrite=True)
    assert summary["step"] == 1 and load_checkpoint(out / "last.pt")["step"] == 1


def test_the_time_budget_counts_every_run_of_the_folder(tmp_path, make_pair_batch):
    """train.max_minutes is the folder's budget: the checkpoint records the training seconds used so far and a
    resumed run stops when the total is used up (the demo resumes with its whole budget, not the rest)."""
    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    out = tmp_path / "run"
    cfg = TrainConfig.from_dict({
        "model": {"descriptor_dim": 4, "num_keypoints": 0, "output_stride": 32, "method": "ntxent"},
        "train": {"steps": 2, "out": str(out), "checkpoint_every": 100, "tensorboard": False, "seed": 0},
    })
    first = run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    ckpt = load_checkpoint(out / "last.pt")
    assert ckpt["metadata"]["train_seconds"] == pytest.approx(first["seconds"], abs=0.2)
    ckpt["metadata"]["train_seconds"] = 600.0            # as if the first run had trained for 10 minutes
    torch.save(ckpt, out / "last.pt")

    cfg.train.steps, cfg.train.max_minutes = 30, 10.0
    used_up = run_training(cfg, resume="auto", batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    assert (used_up["stop_reason"], used_up["steps_run"], used_up["step"]) == ("time", 0, 2)
    total = load_checkpoint(out / "last.pt")["metadata"]["train_seconds"]
    assert 600.0 <= total < 601.0

    cfg.train.steps, cfg.train.max_minutes = 100000, (total + 1.5) / 60.0   # 1.5 s left
    more = run_training(cfg, resume="auto", batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    assert more["stop_reason"] == "time" and more["steps_run"] >= 1 and 1.0 < more["seconds"] < 6.0
    assert more["train_seconds"] == pytest.approx(total + more["seconds"], abs=0.1)
    assert load_checkpoint(out / "last.pt")["metadata"]["train_seconds"] == pytest.approx(more["train_seconds"], abs=0.1)


def _small_ntxent_cfg(out, steps, **optim):
    return TrainConfig.from_dict({
        "model": {"descriptor_dim": 4, "num_keypoints": 0, "output_stride": 32, "method": "ntxent"},
        "optim": {"lr": 1.0e-3, **optim},
        "train": {"steps": steps, "out": str(out), "checkpoint_every": 100, "tensorboard": False, "seed": 0},
    })


def test_cosine_schedule_decays_the_learning_rate_over_the_steps_and_resumes_on_it(tmp_path, make_pair_batch):
    """optim.schedule=cosine without a time budget: lr_t = lr (1 + cos(pi (t - 1) / steps)) / 2, and a resumed run
    continues on the same curve (its horizon is train.steps of the folder, not of the new run)."""
    import math

    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    out = tmp_path / "run"
    cfg = _small_ntxent_cfg(out, 6, schedule="cosine")
    run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    cfg.train.steps = 10
    # the horizon is train.steps: a resumed run with more steps stretches the rest of the curve
    run_training(cfg, resume="auto", batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    lrs = [row["lr"] for row in json.loads((out / "history.json").read_text())]
    expect = [1e-3 * 0.5 * (1 + math.cos(math.pi * (t - 1) / 6)) for t in range(1, 7)]
    expect += [1e-3 * 0.5 * (1 + math.cos(math.pi * (t - 1) / 10)) for t in range(7, 11)]
    assert lrs == pytest.approx(expect, rel=1e-6)
    assert load_checkpoint(out / "last.pt")["scheduler_state"]["progress"] == pytest.approx(0.9)


def test_cosine_schedule_follows_the_time_budget(tmp_path, make_pair_batch):
    """With train.max_minutes (or optim.schedule_minutes) the clock is training time: the rate falls from optim.lr
    towards 0 as the budget is used, whatever the step count."""
    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    cfg = _small_ntxent_cfg(tmp_path / "run", 100000, schedule="cosine", schedule_minutes=2.0 / 60.0)
    cfg.train.max_minutes = 2.0 / 60.0
    summary = run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    lrs = [row["lr"] for row in json.loads((tmp_path / "run" / "history.json").read_text())]
    assert summary["stop_reason"] == "time" and len(lrs) >= 3
    assert lrs[0] == pytest.approx(1e-3, rel=1e-3) and lrs[-1] < 0.2e-3
    assert all(b <= a for a, b in zip(lrs, lrs[1:]))


def test_weight_average_is_the_saved_model_and_resume_keeps_both(tmp_path, make_pair_batch):
    """optim.ema: the checkpoint's model is the running average (not the trained weights, which are stored beside
    it), its identity is the average's, and --resume restores both so the average goes on where it stopped."""
    from dense_descriptor_grasp.model.checkpoint import model_identity

    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    out = tmp_path / "run"
    cfg = _small_ntxent_cfg(out, 4, ema=0.9)
    run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    ckpt = load_checkpoint(out / "last.pt")
    avg, trained = ckpt["model_state"], ckpt["trained_model_state"]
    name = "trunk.conv1.weight" if "trunk.conv1.weight" in avg else next(k for k in avg if k.endswith("weight"))
    assert not torch.equal(avg[name], trained[name])
    model = load_model(out / "last.pt")
    assert model_identity(model) == ckpt["model_identity"]
    assert "moving average" in ckpt["metadata"]["weights"]

    # the average after 4 steps equals the recursion over the trained weights of each step
    plain = _small_ntxent_cfg(tmp_path / "plain", 4)
    from dense_descriptor_grasp.training import train as train_mod
    run = train_mod.start_run(plain, tmp_path / "plain", torch.device("cpu"))
    expected = {k: v.clone() for k, v in run.model.state_dict().items()}
    for step in range(1, 5):
        train_mod.train_step(run.model, batch, run.optimizer, plain, step)
        d = min(0.9, (1.0 + step) / (10.0 + step))
        for k, v in run.model.state_dict().items():
            if v.is_floating_point():
                expected[k] = d * expected[k] + (1 - d) * v
            else:
                expected[k] = v.clone()
    assert torch.allclose(avg[name], expected[name], atol=1e-6)
    assert torch.equal(trained[name], run.model.state_dict()[name])

    cfg.train.steps = 6
    run_training(cfg, resume="auto", batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    resumed = load_checkpoint(out / "last.pt")
    assert resumed["step"] == 6 and not torch.equal(resumed["model_state"][name], avg[name])
    assert not torch.equal(resumed["trained_model_state"][name], trained[name])


def test_bad_schedule_and_average_settings_are_refused():
    with pytest.raises(ValueError, match="optim.schedule"):
        TrainConfig.from_dict({"optim": {"schedule": "linear"}})
    with pytest.raises(ValueError, match="optim.ema"):
        TrainConfig.from_dict({"optim": {"ema": 1.0}})
    with pytest.raises(ValueError, match="optim.schedule_minutes"):
        TrainConfig.from_dict({"optim": {"schedule_minutes": 0}})


def test_fused_adam_is_the_default_gives_the_plain_update_and_resumes_across_settings(tmp_path, make_pair_batch):
    """optim.fused: the fused kernel on the CPU by default, plain Adam with false; both take the same steps (to
    float rounding), and a checkpoint of one resumes with the other (Adam's state dict is the same)."""
    from dense_descriptor_grasp.training.train import build_model, build_optimizer

    cfg = _small_ntxent_cfg(tmp_path / "a", 3)
    plain_cfg = _small_ntxent_cfg(tmp_path / "b", 3, fused=False)
    torch.manual_seed(0)
    model = build_model(cfg)
    twin = build_model(plain_cfg)
    twin.load_state_dict(model.state_dict())
    fused_opt, _ = build_optimizer(model, cfg)
    plain_opt, _ = build_optimizer(twin, plain_cfg)
    assert fused_opt.param_groups[0]["fused"] is True and not plain_opt.param_groups[0].get("fused")
    for m, opt in ((model, fused_opt), (twin, plain_opt)):
        for _ in range(3):
            opt.zero_grad()
            m(torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1)))["features"].square().mean().backward()
            opt.step()
    # the same update up to rounding: Adam divides by sqrt(v) + eps, so a weight whose gradient is at rounding level
    # may step either way; those are a tiny share of the weights
    diff = torch.cat([(p - q).detach().abs().flatten() for p, q in zip(model.parameters(), twin.parameters())])
    assert float((diff > 1e-6).float().mean()) < 1e-3
    assert any(not torch.equal(p, q) for p, q in zip(model.parameters(), build_model(cfg).parameters()))

    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    run_training(cfg, batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    plain = _small_ntxent_cfg(tmp_path / "a", 5, fused=False)
    summary = run_training(plain, resume="auto", batches=itertools.repeat(batch), progress=False, log=lambda s: None)
    assert summary["status"] == "ok" and summary["step"] == 5
    with pytest.raises(ValueError, match="optim.fused"):
        TrainConfig.from_dict({"optim": {"fused": "yes"}})


def test_data_jitter_sets_the_photometric_jitter_of_the_pairs(tiny_dataset):
    """data.jitter: JitterConfig fields for the pairs (data.sensor_noise keeps its own key); a wrong field is named."""
    from dense_descriptor_grasp.training.config import TrainConfig
    from dense_descriptor_grasp.training.data import pair_batches

    def first_batch(jitter):
        cfg = TrainConfig.from_dict({"data": {"dataset": str(tiny_dataset), "split": None, "mode": "augment",
                                              "jitter": jitter, "augment": {"background_prob": 0.0}},
                                     "train": {"batch_size": 1}})
        return next(pair_batches(cfg, seed=3))

    off = {"brightness": 0.0, "contrast": 0.0, "saturation": 0.0, "hue": 0.0, "noise_std": 0.0, "channel_gain": 0.0}
    a, b = first_batch(off), first_batch(off)
    torch.testing.assert_close(a["rgb_a"], b["rgb_a"])
    jittered = first_batch({**off, "brightness": 0.4})
    assert (jittered["rgb_a"] - a["rgb_a"]).abs().max() > 0.01       # the same pair, only the jitter differs
    with pytest.raises(ValueError, match="data.jitter"):
        first_batch({"hue_shift": 0.1})
    with pytest.raises(ValueError, match="data.sensor_noise"):
        TrainConfig.from_dict({"data": {"jitter": {"sensor_noise": 0.5}}})


def test_data_negative_margin_px_reaches_the_pairs(tiny_dataset):
    """data.negative_margin_px: the pairs' off-target negatives keep that many pixels away from the target mask."""
    import cv2
    import numpy as np

    from dense_descriptor_grasp.training.config import TrainConfig
    from dense_descriptor_grasp.training.data import pair_batches

    def closest(margin):
        cfg = TrainConfig.from_dict({"data": {"dataset": str(tiny_dataset), "split": None, "mode": "augment",
                                              "num_negatives": 256, "negative_margin_px": margin},
                                     "train": {"batch_size": 2}})
        batch = next(pair_batches(cfg, seed=3))
        out = []
        for mask, uv, ok in zip(batch["mask_a"].numpy(), batch["neg_uv_a"].numpy(), batch["neg_valid_a"].numpy()):
            dist = cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_C, 3)   # chessboard distance
            iu, iv = np.rint(uv[ok]).astype(int).T
            out.append(dist[iv, iu].min())
        return min(out)

    assert closest(2) == 3 and closest(6) == 7


def test_bf16_precision_runs_the_network_under_autocast_and_keeps_the_losses_float32(make_pair_batch):
    """train.precision=bf16: the first step's losses agree with float32 to bfloat16's precision, the outputs the
    losses see are float32, and the weights stay float32; an unknown precision is refused by name."""
    from dense_descriptor_grasp.model.network import DenseDescriptorNet
    from dense_descriptor_grasp.training.config import LossConfig, RunConfig
    from dense_descriptor_grasp.training.objective import compute_losses

    batch = make_pair_batch(batch_size=1, H=64, W=64, M=16)
    torch.manual_seed(0)
    model = DenseDescriptorNet(descriptor_dim=4, num_keypoints=0, output_stride=32, method="ntxent").eval()
    with torch.no_grad():
        full = compute_losses(model, batch, LossConfig())
        half = compute_losses(model, batch, LossConfig(), precision="bf16")
    assert half["outputs"][0]["features"].dtype == torch.float32
    assert half["total"].dtype == torch.float32 and torch.isfinite(half["total"])
    assert half["total"].item() == pytest.approx(full["total"].item(), rel=0.05)
    assert half["total"].item() != full["total"].item()      # autocast was on: not bit-identical
    assert all(p.dtype == torch.float32 for p in model.parameters())
    with pytest.raises(ValueError, match="precision"):
        compute_losses(model, batch, LossConfig(), precision="fp16")
    with pytest.raises(ValueError, match="train.precision"):
        RunConfig(precision="half")


def test_auto_precision_follows_the_hardware_and_is_recorded_resolved(tmp_path, make_pair_batch, monkeypatch):
    from dense_descriptor_grasp.training.objective import resolve_precision

    assert resolve_precision("fp32", "cpu") == "fp32" and resolve_precision("bf16", "cpu") == "bf16"
    with pytest.raises(ValueError, match="precision"):
        resolve_precision("fp8", "cpu")
    from dense_descriptor_grasp.training import objective

    plain, native = tmp_path / "plain", tmp_path / "native"
    plain.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw\n")
    native.write_text("flags\t\t: fpu sse2 avx2 avx512f avx512bw avx512_bf16\n")
    assert not objective.cpu_has_native_bf16(str(plain)) and objective.cpu_has_native_bf16(str(native))
    assert not objective.cpu_has_native_bf16(str(tmp_path / "missing"))
    monkeypatch.setattr(objective, "cpu_has_native_bf16", lambda: False)
    assert resolve_precision("auto", "cpu") == "fp32"
    monkeypatch.setattr(objective, "cpu_has_native_bf16", lambda: True)
    assert resolve_precision("auto", "cpu") == "bf16"
    # a run with auto logs and records what it resolved to
    out = tmp_path / "run"
    cfg = _small_ntxent_cfg(out, 1)
    cfg.train.precision = "auto"
    lines = []
    run_training(cfg, batches=itertools.repeat(make_pair_batch(batch_size=1, H=64, W=64, M=16)), progress=False,
                 log=lines.append)
    assert any("precision auto -> bf16" in line for line in lines)
    assert yaml.safe_load((out / "config.yaml").read_text())["train"]["precision"] == "bf16"
