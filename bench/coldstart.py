"""Cold-start cost of the Lambda code: the handler module's import time and the zipped asset size.

Import time is measured in fresh interpreters that import boto3 first (boto3 is in the Lambda
runtime and is not ours), then time ``import bounce_runtime.handler``, twice over:
- from the staged asset as it is, with no bytecode, as on Lambda (the asset ships no ``.pyc``
  files and ``/var/task`` is read-only, so every cold start compiles the sources);
- from a copy of the staged asset compiled with ``compileall`` by this interpreter (what shipping
  bytecode for a matching Python version would give).
The zipped size is the staged runtime directory (what the construct uploads) deflated.

Policy load: the first invocation reads the policy file (``config.load_policy``). For policies of
1k, 10k and 100k recipient patterns, written as the construct ships them (``compile_policy``: the
compiled form, loaded without checking or compiling a pattern again) and as written (plain JSON,
checked in full), each load is timed in a fresh interpreter that has imported the handler and
the policy module already (their import is the import figure's business).

    python bench/coldstart.py [--runs 7]

Targets: import <= 30 ms (no bytecode, best of the runs: the machine's noise only adds),
zipped asset (source and 3.14 bytecode) <= 400 KB, compiled 100k-pattern policy load <= 50 ms
(best of the runs).
"""

from __future__ import annotations

import argparse
import compileall
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from _common import median, policy_document, target, use_repo_paths

IMPORT_TARGET_MS = 30.0
# The asset carries CPython 3.14 bytecode beside the source (about 3x the source alone): a few
# hundred KB more to download once per container, against compiling every module at each cold start.
SIZE_TARGET_KB = 400.0
POLICY_LOAD_TARGET_MS = 50.0
POLICY_SIZES = (1_000, 10_000, 100_000)
# boto3 plus the botocore modules a client needs: the Lambda runtime has them loaded anyway.
PRELOAD = "import boto3, botocore.config, botocore.exceptions"
TIMER = (
    "import sys, time; {preload}; sys.path.insert(0, {root!r}); "
    "start = time.perf_counter(); import bounce_runtime.handler; "
    "print(time.perf_counter() - start)"
)


def import_seconds(root: str) -> float:
    """Import time of the handler from `root`, in seconds, in one fresh interpreter that writes
    no bytecode (it reads bytecode that is already there)."""
    code = TIMER.format(preload=PRELOAD, root=root)
    result = subprocess.run(
        [sys.executable, "-B", "-c", code],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


POLICY_TIMER = (
    "import sys, time; sys.path.insert(0, {root!r}); import bounce_runtime.handler; "
    "import bounce_runtime.core.policy_json; from bounce_runtime.config import load_policy; "
    "start = time.perf_counter(); policy = load_policy({path!r}); "
    "print(time.perf_counter() - start, policy.pattern_count())"
)


def policy_files(directory: Path) -> dict[tuple[str, int], Path]:
    """Policy files of each size, compiled (as the construct ships them) and plain JSON."""
    from bounce_runtime.core.policy_json import compile_policy, parse_policy

    files: dict[tuple[str, int], Path] = {}
    for size in POLICY_SIZES:
        document = policy_document(size)
        plain = directory / f"plain-{size}.json"
        plain.write_text(json.dumps(document), encoding="utf-8")
        compiled = directory / f"compiled-{size}.json"
        compiled.write_text(compile_policy(parse_policy(document)), encoding="utf-8")
        files["compiled", size] = compiled
        files["plain", size] = plain
    return files


def policy_load_seconds(root: str, path: Path, size: int) -> float:
    """Seconds ``load_policy(path)`` takes in a fresh interpreter (the staged asset at `root`)."""
    result = subprocess.run(
        [sys.executable, "-B", "-c", POLICY_TIMER.format(root=root, path=str(path))],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    seconds, patterns = result.stdout.split()
    if int(patterns) != size:
        raise RuntimeError(f"{path} loaded {patterns} patterns, expected {size}")
    return float(seconds)


def compiled_copy(staged: Path) -> Path:
    """A copy of the staged asset with every module compiled to bytecode."""
    target_dir = Path(tempfile.mkdtemp(prefix="coldstart-compiled-"))
    shutil.copytree(staged, target_dir, dirs_exist_ok=True)
    if not compileall.compile_dir(str(target_dir), quiet=1):
        raise RuntimeError(f"compileall failed for {target_dir}")
    return target_dir


def slowest_imports(root: str, count: int = 5) -> list[tuple[int, str]]:
    """The modules imported by the handler import (after boto3's) with the largest self import
    time, in microseconds."""
    code = (
        f"{PRELOAD}; import sys; sys.path.insert(0, {root!r}); "
        "sys.stderr.write('HANDLER-IMPORT\\n'); sys.stderr.flush(); import bounce_runtime.handler"
    )
    result = subprocess.run(
        [sys.executable, "-B", "-X", "importtime", "-c", code],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        capture_output=True,
        text=True,
        check=True,
    )
    after_marker = result.stderr.partition("HANDLER-IMPORT\n")[2]
    rows: list[tuple[int, str]] = []
    for line in after_marker.splitlines():
        parts = [p.strip() for p in line.removeprefix("import time:").split("|")]
        if len(parts) == 3 and parts[0].isdigit():
            rows.append((int(parts[0]), parts[2]))
    return sorted(rows, reverse=True)[:count]


def zipped_size(directory: Path) -> int:
    """Bytes of `directory` zipped with deflate, as a Lambda code asset."""
    with tempfile.TemporaryDirectory() as scratch:
        archive = Path(scratch) / "asset.zip"
        with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as zipped:
            for path in sorted(directory.rglob("*")):
                zipped.write(path, path.relative_to(directory))
        return archive.stat().st_size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="fresh interpreters per figure")
    args = parser.parse_args()
    use_repo_paths()
    from cdk_ses_bounce.assets import stage_runtime

    staged = stage_runtime()
    compiled = compiled_copy(staged)
    cold: list[float] = []
    warm_cache: list[float] = []
    for _ in range(args.runs):  # interleaved, so machine noise hits both alike
        cold.append(import_seconds(str(staged)) * 1000)
        warm_cache.append(import_seconds(str(compiled)) * 1000)
    shutil.rmtree(compiled)
    size = zipped_size(staged)
    files = sum(1 for p in staged.rglob("*") if p.is_file())
    print(f"coldstart ({args.runs} fresh interpreters each, boto3 imported first)")
    print(
        f"  import bounce_runtime.handler, staged asset, no bytecode: median {median(cold):.1f} ms"
        f" (min {min(cold):.1f}, max {max(cold):.1f})"
    )
    print(
        f"  import bounce_runtime.handler, staged asset compiled to bytecode: median"
        f" {median(warm_cache):.1f} ms (min {min(warm_cache):.1f}, max {max(warm_cache):.1f})"
    )
    print("  slowest own imports (self time, no bytecode):")
    for micros, name in slowest_imports(str(staged)):
        print(f"    {micros / 1000:6.1f} ms  {name}")
    print(f"  Lambda code asset: {files} files, {size / 1024:.1f} KB zipped (deflate)")
    target("handler import, no bytecode (best run)", min(cold), IMPORT_TARGET_MS, "ms")
    target("zipped asset", size / 1024, SIZE_TARGET_KB, "KB")
    loads = measure_policy_loads(str(staged), args.runs)
    target(
        "compiled policy load, 100k patterns (best run)",
        min(loads["compiled", POLICY_SIZES[-1]]),
        POLICY_LOAD_TARGET_MS,
        "ms",
    )
    return 0


def measure_policy_loads(root: str, runs: int) -> dict[tuple[str, int], list[float]]:
    """Print and return the load times (ms) of each policy file, `runs` fresh interpreters each."""
    loads: dict[tuple[str, int], list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="coldstart-policies-") as scratch:
        files = policy_files(Path(scratch))
        for _ in range(runs):  # interleaved, so machine noise hits every file alike
            for (form, size), path in files.items():
                seconds = policy_load_seconds(root, path, size)
                loads.setdefault((form, size), []).append(seconds * 1000)
        print(f"  policy load at the first invocation (config.load_policy, {runs} runs each):")
        for (form, size), path in files.items():
            times = loads[form, size]
            print(
                f"    {form:>8} {size:>7,} patterns ({path.stat().st_size / 1e6:.2f} MB):"
                f" best {min(times):.1f} ms, median {median(times):.1f} ms"
            )
    return loads


if __name__ == "__main__":
    sys.exit(main())
