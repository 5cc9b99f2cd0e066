"""What the CPython 3.14 bytecode shipped in the Lambda asset saves at cold start, measured on
CPython 3.14 itself, as Pyodide (WebAssembly) under Node: the handler's import from the staged
asset as shipped, and from the same asset without its `.pyc` files (every module compiled from
source, as before), best of N interleaved runs in one interpreter; and the zipped asset sizes.

WebAssembly runs several times slower than Lambda's native CPython, so compare the two import
figures with each other (the ratio), not with bench/coldstart.py's native 3.11 figures.

    python bench/bytecode.py [--runs 7]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

from _common import REPO, median
from coldstart import zipped_size

sys.path.insert(0, str(REPO / "tools" / "py314"))
from py314 import assets_module, run_script

TIMER = Path(__file__).resolve().parent / "_bytecode_import.py"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="imports per figure")
    args = parser.parse_args()
    assets = assets_module()
    shipped = assets.stage_runtime()
    source_only = Path(tempfile.mkdtemp(prefix="bytecode-bench-"))
    shutil.copytree(
        shipped, source_only, ignore=shutil.ignore_patterns("__pycache__"), dirs_exist_ok=True
    )
    compiled = sorted(p.relative_to(shipped) for p in shipped.rglob("*.pyc"))
    modules = sorted(p.relative_to(shipped) for p in shipped.rglob("*.py"))

    result = run_script(
        TIMER, [str(args.runs), str(shipped), str(source_only)], [shipped, source_only]
    )
    if result.returncode != 0:
        print(result.stderr, file=sys.stderr)
        return 1
    figures = json.loads(result.stdout.strip().splitlines()[-1])
    with_bytecode, without = figures[str(shipped)], figures[str(source_only)]
    print(f"bytecode (CPython 3.14 as Pyodide/WebAssembly, {args.runs} imports each, one process)")
    print(f"  modules with shipped bytecode: {len(compiled)} of {len(modules)}")
    for label, runs in (("shipped bytecode", with_bytecode), ("source only", without)):
        print(
            f"  import bounce_runtime.handler, {label}: best {min(runs):.1f} ms,"
            f" median {median(runs):.1f} ms (WebAssembly)"
        )
    print(f"  source-only / shipped bytecode (best): {min(without) / min(with_bytecode):.1f}x")
    print(
        f"  Lambda code asset zipped (deflate): {zipped_size(shipped) / 1024:.1f} KB with bytecode,"
        f" {zipped_size(source_only) / 1024:.1f} KB source only"
    )
    shutil.rmtree(source_only)
    return 0


if __name__ == "__main__":
    sys.exit(main())
