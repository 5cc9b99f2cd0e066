"""Harness fixtures: `harness_report` lines are shown in pytest's terminal summary."""

from __future__ import annotations

from collections.abc import Callable

import pytest

_REPORT: list[str] = []


@pytest.fixture
def harness_report() -> Callable[[str], None]:
    """Print a line now (seen with -s) and repeat it in the terminal summary (always seen)."""

    def report(line: str) -> None:
        print(line)
        _REPORT.append(line)

    return report


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _REPORT:
        terminalreporter.section("proof harness")
        for line in _REPORT:
            terminalreporter.write_line(line)
