"""Imports the Lambda handler from staged assets on CPython 3.14 and prints, as JSON, what it
found. Runs inside Pyodide, started by tests/packaging/test_bytecode.py:

    shipped_bytecode_probe.py ASSET_DIR...

For each asset, in order, in the same interpreter: forget every `bounce_runtime` module, import
`bounce_runtime.handler` from the asset with bytecode writing on (as a Lambda whose code folder
were writable), and report the error if the import failed, where each module was loaded from, and
which files in the asset were created or changed.
"""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path
from typing import Any

PACKAGE = "bounce_runtime"


def files(root: Path) -> dict[str, tuple[int, int]]:
    return {
        p.relative_to(root).as_posix(): (p.stat().st_size, p.stat().st_mtime_ns)
        for p in root.rglob("*")
        if p.is_file()
    }


def import_handler(asset: Path) -> dict[str, Any]:
    for name in [n for n in sys.modules if n.partition(".")[0] == PACKAGE]:
        del sys.modules[name]
    sys.path.insert(0, str(asset))
    importlib.invalidate_caches()
    before = files(asset)
    error = None
    try:
        importlib.import_module(f"{PACKAGE}.handler")
    except Exception as exc:
        error = f"{type(exc).__name__}: {exc}"
    finally:
        sys.path.remove(str(asset))
    after = files(asset)
    modules = {
        name: {
            "file": module.__file__,
            "cached": module.__cached__,
            "loader": type(module.__spec__.loader).__name__,
        }
        for name, module in sys.modules.items()
        if name.partition(".")[0] == PACKAGE
    }
    return {
        "error": error,
        "modules": modules,
        "written": sorted(name for name in after if before.get(name) != after[name]),
    }


if __name__ == "__main__":
    sys.dont_write_bytecode = False
    results = [import_handler(Path(asset)) for asset in sys.argv[1:]]
    print(json.dumps({"version": list(sys.version_info[:2]), "assets": results}))
