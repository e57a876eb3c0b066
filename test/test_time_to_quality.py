import json

from benchmarks import time_to_quality


def _point(minutes, step, px, mm):
    return {"minutes": minutes, "step": step, "median_px": px, "pck_3": 0.1, "pck_5": 0.2, "pck_10": 0.4,
            "median_mm": mm, "within_10mm": 0.25, "matches": 12}


def test_report_from_json_has_every_point_and_both_floors(tmp_path):
    floor = {"median_px": 25.5, "pck_3": 0.0, "pck_5": 0.01, "pck_10": 0.1, "median_mm": 61.0, "within_10mm": 0.02,
             "matches": 12}
    results = {
        "machine": {"cpu": "cpu", "logical_cores": 2, "ram_gb": 1.0, "os": "os", "python": "3", "torch": "t",
                    "torch_threads": 1, "load_average_1_5_15": [1, 1, 1], "utc": "now"},
        "command": "python -m benchmarks.time_to_quality ...", "eval_dataset": "data/eval", "train_dataset": "x",
        "wall_seconds": 1.0, "exit_codes": {"a": 0}, "load_average_end": [1, 1, 1],
        "runs": {"a": {"preset": "a", "points": [_point(0.0, 0, 25.5, 61.0), _point(5.0, 300, 12.345, 28.9)],
                       "floors": {"untrained": floor, "mask_centroid": {**floor, "median_px": 17.5}}},
                 "b": {"preset": "b", "points": [_point(0.0, 0, 25.5, 61.0)]}},
    }
    path = tmp_path / "in.json"
    path.write_text(json.dumps(results))
    assert time_to_quality.main(["--from-json", str(path), "--out", str(tmp_path / "out")]) == 0
    md = (tmp_path / "out" / "time_to_quality.md").read_text()
    rows = [line for line in md.splitlines() if line.startswith("| ") and "preset" not in line]
    assert len(rows) == 5  # 3 points + 2 floors
    assert "| a | 5.0 | 300 | 12.3 | 28.9 |" in md and "floor: mask_centroid |  |  | 17.5" in md
    assert (tmp_path / "out" / "time_to_quality.png").stat().st_size > 5000
    assert json.loads((tmp_path / "out" / "time_to_quality.json").read_text())["runs"]["a"]["points"][1]["step"] == 300


def test_datasets_are_required_without_from_json(capsys):
    assert time_to_quality.main(["--presets", "clutter"]) == 2
    assert "--train-dataset" in capsys.readouterr().err
