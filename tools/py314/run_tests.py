"""The runtime's tests on CPython 3.14, the Lambda's Python: runs inside Pyodide (CPython compiled
to WebAssembly), started by `python tools/py314/py314.py tests [PYTEST ARG]...` (`make test-py314`).

Collects every test under tests/runtime, wherever the files are below it, and leaves out only what
Pyodide cannot run, as listed in CANNOT_RUN_ON_PYODIDE with the reason.
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import pytest

RUNTIME_TESTS = "tests/runtime"

# What Pyodide cannot run, and why: the one list. A key is either a test function's name (every
# test of that name, wherever its file is, is deselected; parameters included) or `import <module>`
# (every test file that imports the module is skipped).
CANNOT_RUN_ON_PYODIDE: dict[str, str] = {
    "import moto": "moto needs the compiled `cryptography` wheel, which Pyodide lacks offline",
    "test_module_runs_as_a_command": "starts a subprocess (Pyodide has none)",
    "test_importing_the_pure_core_loads_no_botocore": "starts a subprocess (Pyodide has none)",
    "test_the_client_config_makes_botocore_try_exactly_once": (
        "serves the local SES on a socket from a thread (Pyodide has neither)"
    ),
    "test_deep_nesting_is_malformed_not_a_crash": (
        "recursion this deep overflows the WebAssembly stack and kills Pyodide "
        "(CPython 3.14 on Lambda raises RecursionError, as the test expects)"
    ),
    "test_a_deeply_nested_recipient_arns_file_is_one_line_not_a_traceback": (
        "recursion this deep overflows the WebAssembly stack and kills Pyodide"
    ),
    "test_plan_bad_rule_recipients_file_exits_1": (
        "parses JSON nested 100,000 deep: overflows the WebAssembly stack and kills Pyodide"
    ),
    "test_a_bad_owned_recipients_value_is_named": (
        "one case parses JSON nested 100,000 deep: overflows the WebAssembly stack"
    ),
    "test_json_nested_too_deep_is_left_to_the_strict_parser": (
        "parses JSON nested 100,000 deep: overflows the WebAssembly stack and kills Pyodide"
    ),
    "test_a_deeply_nested_file_is_one_line": (
        "recursion this deep overflows the WebAssembly stack and kills Pyodide"
    ),
    "test_validate_policy_of_a_deeply_nested_file_is_one_line": (
        "recursion this deep overflows the WebAssembly stack and kills Pyodide"
    ),
    "test_a_real_process_with_bytes_that_are_not_utf8_prints_no_traceback": (
        "starts a subprocess (Pyodide has none)"
    ),
    "test_a_missing_policy_file_is_a_config_error": (
        "expects Linux's ENOENT [Errno 2] in the message; Emscripten numbers it 44"
    ),
}
IMPORT_PREFIX = "import "


class SkipTestFilesImporting(importlib.abc.MetaPathFinder):
    """Makes importing a listed module skip the test file that imports it."""

    def __init__(self, reasons: dict[str, str]) -> None:
        self.reasons = reasons

    def find_spec(
        self, fullname: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        top = fullname.partition(".")[0]
        if top in self.reasons:
            reason = f"imports {top}: {self.reasons[top]}"
            raise pytest.skip.Exception(reason, allow_module_level=True)
        return None


class LeaveOut:
    """Deselects the listed tests and, on a full run, fails on a name that matches no test."""

    def __init__(self, reasons: dict[str, str], *, check_stale: bool) -> None:
        self.reasons = reasons
        self.check_stale = check_stale

    @pytest.hookimpl(trylast=True)
    def pytest_collection_modifyitems(
        self, config: pytest.Config, items: list[pytest.Item]
    ) -> None:
        def name(item: pytest.Item) -> str:
            return getattr(item, "originalname", item.name)

        left_out = [item for item in items if name(item) in self.reasons]
        if self.check_stale:
            stale = set(self.reasons) - {name(item) for item in left_out}
            if stale:
                raise pytest.UsageError(
                    f"{Path(__file__).name}: no test is named {', '.join(sorted(stale))}: "
                    "remove the stale entry from CANNOT_RUN_ON_PYODIDE"
                )
        if left_out:
            config.hook.pytest_deselected(items=left_out)
            items[:] = [item for item in items if name(item) not in self.reasons]

    def pytest_terminal_summary(self, terminalreporter: pytest.TerminalReporter) -> None:
        terminalreporter.section("left out on Pyodide (CANNOT_RUN_ON_PYODIDE in run_tests.py)")
        for key, reason in CANNOT_RUN_ON_PYODIDE.items():
            terminalreporter.write_line(f"{key}: {reason}")


def main(args: Sequence[str]) -> int:
    modules = {
        key.removeprefix(IMPORT_PREFIX): reason
        for key, reason in CANNOT_RUN_ON_PYODIDE.items()
        if key.startswith(IMPORT_PREFIX)
    }
    tests = {k: v for k, v in CANNOT_RUN_ON_PYODIDE.items() if not k.startswith(IMPORT_PREFIX)}
    sys.meta_path.insert(0, SkipTestFilesImporting(modules))
    leave_out = LeaveOut(tests, check_stale=not args)
    return int(pytest.main([RUNTIME_TESTS, *args], plugins=[leave_out]))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
