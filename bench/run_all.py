"""Runs every benchmark in its own process, one after another, and sums up the targets.

    python bench/run_all.py            (what `make bench` runs)

Exit status: 1 if a benchmark failed to run; a missed target is reported, not an error.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from _common import NODE_BIN

BENCH_DIR = Path(__file__).resolve().parent
BENCHMARKS = (
    "overhead.py",
    "header_block.py",
    "coldstart.py",
    "bytecode.py",
    "pacing.py",
    "capacity.py",
    "synth.py",
)


def main() -> int:
    env = {**os.environ, "PATH": f"{NODE_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    failed: list[str] = []
    targets: list[str] = []
    for name in BENCHMARKS:
        print(f"$ python bench/{name}", flush=True)
        result = subprocess.run(
            [sys.executable, str(BENCH_DIR / name)],
            env=env,
            stdout=subprocess.PIPE,
            text=True,
            check=False,
        )
        print(result.stdout, end="", flush=True)
        targets.extend(
            f"{name}: {line.strip()}"
            for line in result.stdout.splitlines()
            if line.strip().startswith("target ")
        )
        if result.returncode != 0:
            failed.append(f"{name} (exit {result.returncode})")
    print("summary")
    for line in targets:
        print(f"  {line}")
    if failed:
        print(f"  failed to run: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
