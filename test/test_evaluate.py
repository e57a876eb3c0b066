"""evaluate_model on a tiny rendered dataset with two tiny checkpoints (keypoint + NT-Xent)."""
import json

import numpy as np
import pytest
import torch

from dense_descriptor_grasp.data.generate import generate_dataset
from dense_descriptor_grasp.data.render import RenderConfig
from dense_descriptor_grasp.evaluation.evaluate import evaluate_models, main
from dense_descriptor_grasp.model import DenseDescriptorNet, save_checkpoint

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("eval_ds"))
    generate_dataset(root, num_views=6, views_per_scene=2, seed=5, config=RenderConfig(width=80, height=64), progress=False)
    return root


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    folder = tmp_path_factory.mktemp("eval_ckpt")
    paths = []
    for method, dim in (("keypoint", 8), ("ntxent", 3)):
        torch.manual_seed(dim)
        model = DenseDescriptorNet(descriptor_dim=dim, num_keypoints=3, method=method)
        paths.append(str(save_checkpoint(folder / f"{method}.pt", model, step=7,
                                         config={"data": {"split": "train", "val_fraction": 0.1}},
                                         metadata={"wall_seconds": 1.5})))
    return paths


def _check_summary(r, max_pairs):
    assert 1 <= r["num_pairs"] <= max_pairs
    assert r["num_correspondences"] > 0
    pcks = [r["pck"][k] for k in ("1", "3", "5", "10", "20")]
    assert all(0.0 <= p <= 1.0 for p in pcks) and pcks == sorted(pcks)
    curve = np.array(r["pck_curve"])
    assert curve.shape == (100,) and np.all(np.diff(curve) >= 0)
    assert r["auc"] == pytest.approx(curve.mean())
    # the median error splits the correspondences in halves: PCK@k >= 0.5 from k = median on, <= 0.5 below it
    median, ks = r["median_error_px"], np.arange(1, 101)
    assert np.all(curve[ks >= median] >= 0.5) and np.all(curve[ks < median] <= 0.5), (median, curve[:20])
    assert r["mean_error_px"] > 0 and np.isfinite(median)


def test_evaluate_two_checkpoints_writes_report_and_pngs(dataset, checkpoints, tmp_path):
    out = tmp_path / "eval"
    rc = main(["--checkpoints", *checkpoints, "--dataset", dataset, "--output-dir", str(out), "--num-pairs", "2",
               "--num-correspondences", "20", "--no-progress", "--num-visual-pairs", "1"])
    assert rc == 0
    report = json.loads((out / "report.json").read_text())
    assert set(report["models"]) == {"keypoint", "ntxent"}
    assert report["models"]["keypoint"]["method"] == "keypoint" and report["models"]["ntxent"]["descriptor_dim"] == 3
    assert report["settings"]["split"] == "val" and report["settings"]["val_fraction"] == 0.1
    assert report["pair_kinds"]["augment"]["evaluated"] and report["pair_kinds"]["multiview"]["evaluated"]
    for name in ("keypoint", "ntxent"):
        for kind in ("augment", "multiview"):
            _check_summary(report["results"][name][kind], 2)
    for key in ("pck_curves", "matches_augment", "matches_multiview"):
        with open(report["files"][key], "rb") as f:
            assert f.read(8) == PNG_MAGIC


def test_same_pairs_for_every_model_and_run(dataset, checkpoints, tmp_path):
    """The same checkpoint listed twice gets identical numbers (same pairs); --whole-image uses the same pairs."""
    kw = dict(num_pairs=3, num_correspondences=15, pair_kinds=("augment",), progress=False, num_visual_pairs=0)
    r1 = evaluate_models([checkpoints[0], checkpoints[0]], dataset, tmp_path / "a", names=["kp", "kp_again"], **kw)
    assert set(r1["results"]) == {"kp", "kp_again"}
    assert r1["results"]["kp"]["augment"]["pck_curve"] == r1["results"]["kp_again"]["augment"]["pck_curve"]
    r2 = evaluate_models([checkpoints[0]], dataset, tmp_path / "b", whole_image=True, **kw)
    assert r2["settings"]["search_region"] == "whole image"
    items = r1["pair_kinds"]["augment"]["pair_items_epoch_index"]
    assert r2["pair_kinds"]["augment"]["pair_items_epoch_index"] == items
    # the val split has 2 views: the third augmentation pair comes from a second PairDataset epoch
    assert len(items) == 3 and len({tuple(i) for i in items}) == 3 and max(e for e, _ in items) == 1
    r = r1["results"]["kp"]["augment"]
    assert r["num_pairs"] + r["skipped_pairs"] == 3
    assert r2["results"]["keypoint"]["augment"]["num_correspondences"] == r1["results"]["kp"]["augment"]["num_correspondences"]


def test_default_names_use_the_folder_when_file_names_collide():
    from dense_descriptor_grasp.evaluation.evaluate import _model_names

    assert _model_names(["models/duck_keypoint/last.pt", "models/duck_ntxent/last.pt"]) == ["duck_keypoint", "duck_ntxent"]
    assert _model_names(["a/kp.pt", "b/nx.pt"]) == ["kp", "nx"]


def test_clear_errors(dataset, checkpoints, tmp_path, capsys):
    assert main(["--checkpoints", checkpoints[0], "--dataset", str(tmp_path / "nope"), "--output-dir", str(tmp_path)]) == 2
    assert "no dataset folder" in capsys.readouterr().err
    assert main(["--checkpoints", str(tmp_path / "missing.pt"), "--dataset", dataset, "--output-dir", str(tmp_path)]) == 2
    assert "checkpoint not found" in capsys.readouterr().err


def test_semantic_flag_runs_the_semantic_evaluation(dataset, checkpoints, tmp_path, capsys):
    """``evaluate_model --semantic`` dispatches to evaluation.semantic; the PCK options stay as they are."""
    out = tmp_path / "semantic"
    assert main(["--semantic", "--dataset", dataset, "--model", checkpoints[1], "--out", str(out), "--no-progress",
                 "--visual-views", "1"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "semantic_report.json").read_text())
    assert list(report["methods"]) == ["ntxent", "untrained", "mask_centroid"]
    assert report["methods"]["ntxent"]["matches"] > 0 and "| ntxent |" in printed
    assert (out / "semantic_matches.png").read_bytes()[:8] == PNG_MAGIC
    assert main(["--semantic", "--dataset", str(tmp_path / "nope"), "--model", checkpoints[0], "--out", str(out)]) == 2
    assert "no dataset folder" in capsys.readouterr().err
    assert main(["--semantic", "--dataset", dataset, "--out", str(out)]) == 2
    assert "--model" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "--semantic" in capsys.readouterr().out
