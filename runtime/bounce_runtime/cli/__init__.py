"""Operator commands: ``python -m bounce_runtime <command> ...``.

Each command group is a module with ``add_commands(commands)``: it adds its subparsers to the
``add_subparsers()`` object ``commands`` and sets ``run`` on each, a callable taking the parsed
arguments and returning the exit status. Registering a group is one line in ``COMMAND_GROUPS``
(or a ``register`` call). Bad input: a one-line message on stderr and exit status 1 (2 for
command-line usage errors); no traceback reaches the user.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn, TextIO

from bounce_runtime.errors import CommandError, PermanentError

PROG = "python -m bounce_runtime"
DESCRIPTION = "Operator commands of the bounce runtime (no AWS call unless a command says so)."

# The modules whose add_commands() build the command line, in help order.
COMMAND_GROUPS: list[str] = [
    "bounce_runtime.cli.plan",
    "bounce_runtime.operations.commands",
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
    raise SystemExit(1)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command; return the exit status (argparse exits 2 on usage errors)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        status: int = args.run(args)
    except (CommandError, PermanentError, ValueError) as error:
        _fail(str(error))
    except Exception as error:  # a bug: still one line, no traceback for the user
        _fail(f"unexpected {type(error).__name__} (please report it): {error}")
    return status
