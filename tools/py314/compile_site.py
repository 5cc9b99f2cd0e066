"""Compile the 3.14 test wheels' modules once, so each run imports them without compiling: runs
inside Pyodide, started by py314.py (`compile_site.py SITE_DIR`)."""

import compileall
import sys

if __name__ == "__main__":
    sys.exit(0 if compileall.compile_dir(sys.argv[1], quiet=1) else 1)
