"""Compile a package to bytecode, reproducibly: runs inside Pyodide (CPython 3.14), started by
py314.py.

    compile_package.py PACKAGE_DIR OUTPUT_DIR

Writes `OUTPUT_DIR/<package>/**/__pycache__/<module>.<cache tag>.pyc` for every module, as PEP 552
unchecked-hash files: the interpreter loads them without looking at the source's timestamp or
hash, so they stay valid in a zip whose timestamps change. The code objects name the module by its
path relative to OUTPUT_DIR (the interpreter puts the real path in when it loads the file), and the
launcher fixes PYTHONHASHSEED, so the same source gives the same bytes on every machine.
"""

from __future__ import annotations

import importlib.util
import py_compile
import sys
from pathlib import Path


def main(package_dir: Path, output_dir: Path) -> None:
    if sys.flags.hash_randomization:
        raise SystemExit("set PYTHONHASHSEED=0: set constants compile in hash order")
    for module in sorted(package_dir.rglob("*.py")):
        relative = module.relative_to(package_dir.parent)
        target = output_dir / importlib.util.cache_from_source(relative.as_posix())
        py_compile.compile(
            str(module),
            cfile=str(target),
            dfile=relative.as_posix(),
            doraise=True,
            optimize=0,
            invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH,
        )


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
