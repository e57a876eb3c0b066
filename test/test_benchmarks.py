"""Each benchmark's --quick mode at a tiny size writes its table, JSON and PNG (no timing or memory assertions)."""
import json

import pytest
import torch

from benchmarks import inference_speed, training_memory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(autouse=True)
def _restore_torch_threads():
    """--threads 1 (fast on a shared machine) sets torch's thread count in this process: restore it afterwards."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def test_training_memory_quick_writes_table(tmp_path):
    rc = training_memory.main(["--quick", "--height", "64", "--width", "64", "--correspondences", "16",
                               "--steps", "1", "--threads", "1", "--output-dir", str(tmp_path)])
    report = json.loads((tmp_path / "training_memory.json").read_text())
    assert rc == 0, [r for r in report["results"] if "error" in r]
    got = {(r["method"], r["descriptor_dim"]) for r in report["results"]}
    assert got == {(m, d) for m in ("keypoint", "ntxent") for d in training_memory.QUICK_DIMS}
    for r in report["results"]:
        assert "error" not in r, r
        assert r["peak_mb"] >= r["baseline_mb"] > 0 and r["step_s"] > 0 and r["height"] == 64, r
        assert r["train_mb"] == pytest.approx(r["peak_mb"] - r["import_mb"], abs=0.2) and r["train_mb"] > 0, r
        assert len(r["losses"]) == 1 and r["losses"][0] == r["losses"][0], r  # one finite (non-NaN) training loss
    assert any(t["target"].startswith("keypoint training memory") for t in report["targets"])
    assert len(report["targets"]) >= 4 and all(t["met"] is not None for t in report["targets"]), report["targets"]
    md = (tmp_path / "training_memory.md").read_text()
    assert "| D | keypoint peak MiB" in md and "| 512 |" in md and "Targets of issue 5" in md
    assert (tmp_path / "training_memory.png").read_bytes()[:8] == PNG_MAGIC


def test_synthetic_pair_batch_follows_the_contract():
    b = training_memory.synthetic_pair_batch(48, 64, 10)
    assert b["rgb_a"].shape == (1, 3, 48, 64) and b["mask_a"].dtype.is_floating_point is False
    assert b["uv_a"].shape == (1, 10, 2) and b["valid"].shape == (1, 10) and b["valid"].any()
    assert b["T_world_cam_b"].shape == (1, 4, 4) and b["K_a"].shape == (1, 3, 3)


def test_inference_speed_quick_writes_table(tmp_path):
    rc = inference_speed.main(["--quick", "--sizes", "64x48", "--repeats", "1", "--warmup", "0", "--threads", "1",
                               "--output-dir", str(tmp_path)])
    assert rc == 0
    report = json.loads((tmp_path / "inference_speed.json").read_text())
    configs = {(r["config"], r["descriptor_dim"]) for r in report["results"]}
    assert configs == {("trunk", None)} | {("descriptors", d) for d in inference_speed.QUICK_DIMS}
    assert all(r["fps"] > 0 for r in report["results"])
    md = (tmp_path / "inference_speed.md").read_text()
    assert "64x48" in md and "bare trunk" in md
    assert (tmp_path / "inference_speed.png").read_bytes()[:8] == PNG_MAGIC
