"""Shared helpers of the benchmarks: a machine description, markdown tables, and the package's atomic writers
(``atomic_io``: ``atomic_write_json``, ``atomic_write_text``; ``save_figure`` = ``atomic_save_figure``)."""
from __future__ import annotations

import datetime
import os
import platform
from pathlib import Path
from typing import Sequence

from dense_descriptor_grasp.atomic_io import atomic_save_figure, atomic_write_json, atomic_write_text  # noqa: F401

RESULTS_DIR = Path(__file__).resolve().parent / "results"


save_figure = atomic_save_figure   # the benchmarks' name for it (PNG, 110 dpi, tight box)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for line in f:
                if line.startswith("PRETTY_NAME="):
                    return line.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return platform.platform()


def machine_description() -> dict:
    """CPU, cores, RAM, OS, Python, torch version and threads, load average, UTC time."""
    import psutil
    import torch

    return {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "ram_gb": round(psutil.virtual_memory().total / 2**30, 1),
        "os": _os_name(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
        "device": "cpu",
        "load_average_1_5_15": [round(x, 2) for x in os.getloadavg()],
        "utc": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def machine_line(m: dict) -> str:
    return (f"{m['cpu']}, {m['logical_cores']} logical cores, {m['ram_gb']} GB RAM, {m['os']}, Python {m['python']}, "
            f"torch {m['torch']} ({m['torch_threads']} threads, CPU), load average at start {m['load_average_1_5_15']}, "
            f"{m['utc']}")


def markdown_table(header: Sequence[str], rows: Sequence[Sequence]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---:" if i else "---" for i in range(len(header))) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"
