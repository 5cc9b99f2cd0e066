"""The repository root must not shadow the `constructs` package that aws-cdk-lib imports."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, constructs, aws_cdk, cdk_ses_bounce, bounce_runtime
print(json.dumps({
    "constructs": constructs.__file__,
    "construct_class": hasattr(constructs, "Construct"),
    "cdk_ses_bounce": cdk_ses_bounce.__file__,
    "bounce_runtime": bounce_runtime.__file__,
}))
"""


def test_source_root_has_no_init() -> None:
    assert not (REPO_ROOT / "constructs" / "__init__.py").exists()
    assert (REPO_ROOT / "constructs" / "cdk_ses_bounce" / "__init__.py").is_file()


def test_running_from_repo_root_imports_the_real_constructs_package() -> None:
    # `python -c` puts the current directory first on sys.path, exactly like `python app.py`.
    result = subprocess.run(
        [sys.executable, "-c", PROBE],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    found = json.loads(result.stdout.strip().splitlines()[-1])
    constructs_file = Path(found["constructs"]).resolve()
    assert found["construct_class"] is True
    assert "site-packages" in constructs_file.parts
    assert REPO_ROOT / "constructs" not in constructs_file.parents
    assert Path(found["cdk_ses_bounce"]).resolve().parent == REPO_ROOT / "constructs/cdk_ses_bounce"
    assert Path(found["bounce_runtime"]).resolve().parent == REPO_ROOT / "runtime/bounce_runtime"
