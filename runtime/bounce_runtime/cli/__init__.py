"""Operator commands: ``cdk-ses-bounce <command> ...`` (the installed console command) or
``python -m bounce_runtime <command> ...``.

Each command group is a module with ``add_commands(commands)``: it adds its subparsers to the
``add_subparsers()`` object ``commands`` and sets ``run`` on each, a callable taking the parsed
arguments and returning the exit status. Registering a group is one line in ``COMMAND_GROUPS``
(or a ``register`` call). Exit status: 0 done, 1 problems found or an error (one line on stderr),
2 command-line usage errors; no traceback reaches the user. A command that calls AWS needs boto3
(a dependency of the package); where it is missing, the error says what to install.
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from bounce_runtime.errors import CommandError, PermanentError

CONSOLE_COMMAND = "cdk-ses-bounce"  # [project.scripts] in pyproject.toml
MODULE_COMMAND = "python -m bounce_runtime"
# The name the user typed, for usage and error lines.
PROG = (
    CONSOLE_COMMAND
    # (cdk-ses-bounce.exe on Windows)
    if os.path.splitext(os.path.basename(sys.argv[0] if sys.argv else ""))[0] == CONSOLE_COMMAND
    else MODULE_COMMAND
)
# Exit statuses of every command (docs/operations.md, "Exit status").
EXIT_OK = 0
EXIT_PROBLEMS = 1
EXIT_USAGE = 2
# The modules an AWS command imports; when one is missing, the fix is to install boto3.
AWS_SDK_MODULES = frozenset({"boto3", "botocore", "jmespath", "s3transfer", "dateutil", "urllib3"})
INSTALL_AWS_SDK = (
    "pip install 'boto3>=1.40' (a dependency of cdk-ses-bounce: reinstall it without --no-deps)"
)
DESCRIPTION = "Operator commands of the bounce runtime (no AWS call unless a command says so)."

# The modules whose add_commands() build the command line, in help order.
COMMAND_GROUPS: list[str] = [
    "bounce_runtime.cli.plan",
    "bounce_runtime.operations.commands",
    "bounce_runtime.operations.preflight",
]
_registered: list[Callable[[Any], None]] = []


def register(add_commands: Callable[[Any], None]) -> None:
    """Add a command group given by its ``add_commands`` function (after ``COMMAND_GROUPS``)."""
    _registered.append(add_commands)


def build_parser() -> argparse.ArgumentParser:
    """The command-line parser of ``python -m bounce_runtime``."""
    parser = argparse.ArgumentParser(prog=PROG, description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True)
    for module in COMMAND_GROUPS:
        importlib.import_module(module).add_commands(commands)
    for add_commands in _registered:
        add_commands(commands)
    return parser


def write_line(text: str, stream: TextIO | None = None) -> None:
    """Write ``text`` and a newline to ``stream`` (stdout) so that it cannot fail: what the
    stream's encoding cannot carry (a lone surrogate from a file name that is not UTF-8; any
    non-ASCII character under an ASCII locale) is written as a backslash escape."""
    stream = stream or sys.stdout
    encoding = getattr(stream, "encoding", None) or "utf-8"
    stream.write(text.encode(encoding, "backslashreplace").decode(encoding) + "\n")


def write_json(document: Any, stream: TextIO | None = None) -> None:
    """Write ``document`` as indented JSON: non-ASCII text as itself where the stream's encoding
    carries it, else as JSON escapes (still the same JSON)."""
    stream = stream or sys.stdout
    text = json.dumps(document, indent=2, ensure_ascii=False)
    try:
        text.encode(getattr(stream, "encoding", None) or "utf-8")
    except UnicodeEncodeError:
        text = json.dumps(document, indent=2, ensure_ascii=True)
    stream.write(text + "\n")


def _fail(message: str) -> NoReturn:
    one_line = " ".join(message.splitlines())  # one line, whatever the error's text holds
    write_line(f"{PROG}: error: {one_line}", sys.stderr)
    raise SystemExit(EXIT_PROBLEMS)


def missing_aws_sdk_message(error: ModuleNotFoundError) -> str | None:
    """What to install when ``error`` is a missing part of the AWS SDK, else None."""
    top = (error.name or "").split(".", 1)[0]
    if top not in AWS_SDK_MODULES:
        return None
    return f"this command calls AWS and needs boto3 (module {top!r} is missing): {INSTALL_AWS_SDK}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status (argparse exits 2 on usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except (CommandError, PermanentError, ValueError) as error:
        _fail(str(error))
    except ModuleNotFoundError as error:
        _fail(
            missing_aws_sdk_message(error)
            or f"unexpected ModuleNotFoundError (please report it): {error}"
        )
    except Exception as error:  # a bug: still one line, no traceback for the user
        _fail(f"unexpected {type(error).__name__} (please report it): {error}")
    return status
