"""The one JSON writer and the one figure writer of atomic_io (reports, states, dataset files, plots)."""
import json
import math

import numpy as np
import pytest

from dense_descriptor_grasp.atomic_io import atomic_save_figure, atomic_write_json, dumps_json_rows, json_safe


def test_strict_json_turns_nan_and_numpy_into_plain_json(tmp_path):
    obj = {"a": float("nan"), "b": np.float32(1.5), "c": np.int64(3), "d": np.arange(3), "e": (1, float("inf")),
           4: "key"}
    path = atomic_write_json(tmp_path / "r.json", obj, strict=True)
    text = path.read_text()
    assert text.endswith("}\n") and "NaN" not in text and "Infinity" not in text
    assert json.loads(text) == {"a": None, "b": 1.5, "c": 3, "d": [0, 1, 2], "e": [1, None], "4": "key"}
    assert json_safe([np.float64(2.0)]) == [2.0] and type(json_safe([np.float64(2.0)])[0]) is float
    with pytest.raises(TypeError):
        atomic_write_json(tmp_path / "x.json", {"a": object()}, strict=True)


def test_default_json_keeps_nan_and_indent(tmp_path):
    path = atomic_write_json(tmp_path / "b.json", {"x": float("nan"), "y": [1, 2]})
    assert path.read_text() == '{\n  "x": NaN,\n  "y": [\n    1,\n    2\n  ]\n}\n'
    assert math.isnan(json.loads(path.read_text())["x"])
    assert atomic_write_json(tmp_path / "c.json", {"x": 1}, indent=1).read_text() == '{\n "x": 1\n}\n'


def test_rows_layout_is_deterministic_with_a_matrix_row_per_line(tmp_path):
    obj = {"b": [[1, 0], [0, 1]], "a": {"z": 1, "y": [1.5, None]}, "c": []}
    path = atomic_write_json(tmp_path / "m.json", obj, rows=True)
    assert path.read_text() == ('{\n "a": {\n  "y": [1.5, null],\n  "z": 1\n },\n "b": [\n  [1, 0],\n  [0, 1]\n ],\n'
                                ' "c": []\n}\n')
    assert dumps_json_rows(obj) + "\n" == path.read_text() and json.loads(path.read_text()) == obj


def test_figure_is_written_as_png(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1], [0, 1])
    path = atomic_save_figure(fig, tmp_path / "sub" / "f.png", dpi=50)
    plt.close(fig)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert [p.name for p in path.parent.iterdir()] == ["f.png"]
