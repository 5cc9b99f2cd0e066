"""Times `import bounce_runtime.handler` from staged assets, inside one CPython 3.14 (Pyodide)
interpreter: started by bench/bytecode.py, not a benchmark on its own.

    _bytecode_import.py RUNS ASSET_DIR...

boto3 and the botocore modules a client needs are imported first, then the handler once from the
first asset (so the standard-library modules it needs are loaded, as boto3's are on Lambda). Each
run then forgets the `bounce_runtime` modules and imports the handler from each asset in turn.
Prints one JSON line: milliseconds per asset, one figure per run.
"""

from __future__ import annotations

import importlib
import json
import sys
import time

import boto3  # noqa: F401  (loaded on Lambda before our code)
import botocore.config
import botocore.exceptions  # noqa: F401

PACKAGE = "bounce_runtime"


def import_ms(asset: str) -> float:
    for name in [n for n in sys.modules if n.partition(".")[0] == PACKAGE]:
        del sys.modules[name]
    sys.path.insert(0, asset)
    importlib.invalidate_caches()
    start = time.perf_counter()
    importlib.import_module(f"{PACKAGE}.handler")
    elapsed = time.perf_counter() - start
    sys.path.remove(asset)
    return elapsed * 1000


if __name__ == "__main__":
    runs, assets = int(sys.argv[1]), sys.argv[2:]
    import_ms(assets[0])
    figures: dict[str, list[float]] = {asset: [] for asset in assets}
    for _ in range(runs):
        for asset in assets:  # interleaved, so machine noise hits each alike
            figures[asset].append(import_ms(asset))
    print(json.dumps(figures))
