"""Run every benchmark (``make benchmarks``): training_memory, then inference_speed.

```
python -m benchmarks.run_all            # full sizes (about 30 min on 2 CPU cores: training_memory runs every
                                        # method x decoder none / fpn x 8 D values, 48 processes of ~20 s)
python -m benchmarks.run_all --quick    # each benchmark's --quick mode
python -m benchmarks.run_all --threads 1  # one torch thread (what the README's tables used on a shared machine)
```
Extra arguments after ``--`` are not supported: run a benchmark module directly to change its settings.
"""
from __future__ import annotations

import argparse
import sys
import time

from . import inference_speed, training_memory

BENCHMARKS = {"training_memory": training_memory.main, "inference_speed": inference_speed.main}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.run_all", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="pass --quick to every benchmark")
    p.add_argument("--only", nargs="+", choices=list(BENCHMARKS), default=list(BENCHMARKS))
    p.add_argument("--output-dir", default=None, help="default: benchmarks/results")
    p.add_argument("--threads", type=int, default=None,
                   help="torch threads for every benchmark (1 on a machine shared with other jobs)")
    args = p.parse_args(argv)
    status = 0
    for name in args.only:
        sub = (["--quick"] if args.quick else []) + (["--output-dir", args.output_dir] if args.output_dir else [])
        sub += ["--threads", str(args.threads)] if args.threads else []
        print(f"== {name} {' '.join(sub)}", flush=True)
        t = time.perf_counter()
        rc = BENCHMARKS[name](sub)
        print(f"== {name} finished in {time.perf_counter() - t:.0f} s (exit {rc})", flush=True)
        status = status or rc
    return status


if __name__ == "__main__":
    sys.exit(main())
