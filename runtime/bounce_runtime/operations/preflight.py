"""``preflight``: can this processor bounce mail right now? Read-only checks of a deployed
processor, one line each with ok / problem / unknown, what it means and how to fix it.

``add_commands(subparsers)`` plugs it into the operator command. Exit status: 0 no problem found
(unknowns are listed; ``--strict`` counts them as problems), 1 a problem found or an error (one
line on stderr), 2 a usage error, 130 interrupted. boto3 is imported only when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from bounce_runtime import cli
from bounce_runtime.errors import OperationsError
from bounce_runtime.operations import preflight_reads
from bounce_runtime.operations.command_support import add_aws_options
from bounce_runtime.operations.dns_mx import MxResolver, lookup_mx
from bounce_runtime.operations.preflight_checks import (
    PROBLEM,
    UNKNOWN,
    Check,
    Processor,
    Read,
    summary,
    unknown_check,
)

COMMAND: Final = "preflight"
EXIT_INTERRUPTED: Final = 130


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``preflight``."""
    parser = subparsers.add_parser(
        COMMAND,
        help="check that a deployed processor can bounce mail (read-only)",
        description="Read-only checks of a deployed BounceProcessor: the region receives mail, "
        "its rule set is active and its rule enabled, no earlier rule stops its mail, the bounce "
        "sender and recipients are verified identities, MX records point at SES, the account "
        "can send, the send budget is usable, the queues hold no dead letters or backlog, the "
        "function has no recent errors. See docs/operations.md, 'Preflight'.",
    )
    where = parser.add_argument_group(
        "processor",
        "the deployed stack and the processor's construct path, or its names (a name given "
        "with --stack replaces what the stack says)",
    )
    where.add_argument("--stack", metavar="NAME", help="CloudFormation stack name")
    where.add_argument(
        "--processor", metavar="PATH", help="construct path inside the stack, e.g. BounceProcessor"
    )
    where.add_argument("--function", metavar="NAME", help="the processor's Lambda function")
    where.add_argument("--rule-set", metavar="NAME", help="its receipt rule set")
    where.add_argument("--rule", metavar="NAME", help="its receipt rule")
    where.add_argument("--queue-url", metavar="URL", help="its queue")
    where.add_argument("--dead-letter-queue-url", metavar="URL", help="its dead-letter queue")
    add_aws_options(parser)
    parser.add_argument("--strict", action="store_true", help="exit 1 when a check is unknown, too")
    parser.set_defaults(run=run_preflight)


def new_clients(profile: str | None, region: str | None) -> tuple[Callable[[str], Any], str]:
    """Clients of one boto3 session and its region (``AWS_ENDPOINT_URL`` redirects them)."""
    import boto3
    import botocore.session
    from botocore.config import Config

    core = botocore.session.Session(profile=profile)
    session: Any = boto3.session.Session(botocore_session=core, region_name=region)
    if session.region_name is None:
        raise OperationsError(
            "no AWS region: pass --region, or set AWS_DEFAULT_REGION or a profile's region"
        )
    # Standard retries, 3 attempts unless AWS_MAX_ATTEMPTS (or the profile) says otherwise.
    retries: Any = {"mode": "standard"}
    if core.get_config_variable("max_attempts") is None:
        retries["max_attempts"] = 3
    config = Config(retries=retries, connect_timeout=5, read_timeout=20)
    made: dict[str, Any] = {}

    def client(service: str) -> Any:
        if service not in made:
            made[service] = session.client(service, config=config)
        return made[service]

    return client, str(session.region_name)


def _progress(stream: TextIO) -> Callable[[str], None]:
    if not stream.isatty():
        return lambda _: None

    def show(step: str) -> None:
        stream.write(f"\rchecking {step}...".ljust(40))
        stream.flush()

    return show


def preflight(
    args: argparse.Namespace,
    clients: Callable[[str], Any],
    region: str,
    *,
    resolve_mx: MxResolver = lookup_mx,
    now: datetime | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> tuple[Processor, list[Check]]:
    """Find the processor, then run every check."""
    by_stack = args.stack is not None or args.processor is not None
    by_name = any(
        v is not None
        for v in (
            args.function,
            args.rule_set,
            args.rule,
            args.queue_url,
            args.dead_letter_queue_url,
        )
    )
    if not by_stack and not by_name:
        raise OperationsError("give --stack and --processor, or --function (and the other names)")
    names = dict(
        function=args.function,
        rule_set=args.rule_set,
        rule=args.rule,
        queue_url=args.queue_url,
        dead_letter_queue_url=args.dead_letter_queue_url,
    )
    if by_stack:
        if args.stack is None or args.processor is None:
            raise OperationsError("--stack and --processor go together")
        progress("the stack")
        found = preflight_reads.find_in_stack(
            clients("cloudformation"), stack=args.stack, processor=args.processor
        )
        from_stack = dict(
            function=found[preflight_reads.FUNCTION_ID],
            rule_set=found.get("RuleSet"),
            rule=found[preflight_reads.RULE_ID],
            queue_url=found["Queue"],
            dead_letter_queue_url=found["DeadLetterQueue"],
        )
        # A name given with --stack wins (e.g. --rule-set for a rule set imported from elsewhere).
        names = {key: names[key] or value for key, value in from_stack.items()}
    progress("the function")
    processor, config = preflight_reads.describe_processor(clients, region=region, **names)
    checks = [_function_check(processor, config)] if config is not None else []
    checks += preflight_reads.run_checks(
        clients, processor, resolve_mx=resolve_mx, now=now or datetime.now(UTC), progress=progress
    )
    return processor, checks


def _function_check(processor: Processor, config: Read) -> Check:
    if config.ok:
        return Check("function", "ok", f"function {processor.function_name} found")
    if config.code == "ResourceNotFoundException":
        return Check("function", PROBLEM, f"no such function: {config.error}", "check --function")
    return unknown_check("function", "the function", config, "lambda:GetFunctionConfiguration")


def print_report(
    processor: Processor, checks: list[Check], output: str, out: TextIO | None = None
) -> None:
    out = out or sys.stdout
    counts = summary(checks)
    if output == "json":
        cli.write_json(
            {
                "region": processor.region,
                "rule_set": processor.rule_set,
                "rule": processor.rule,
                "function": processor.function_name,
                "checks": [check.to_json() for check in checks],
                "summary": counts,
            },
            out,
        )
        return
    width = max(len(check.name) for check in checks)
    for check in checks:
        cli.write_line(f"{check.status:<8} {check.name:<{width}}  {check.meaning}", out)
        if check.fix and check.status != "ok":
            cli.write_line(f"{'':<8} {'':<{width}}  fix: {check.fix}", out)
    cli.write_line(
        f"\n{counts['ok']} ok, {counts[PROBLEM]} problem, {counts[UNKNOWN]} unknown", out
    )


def run_preflight(args: argparse.Namespace) -> int:
    """``preflight``: the report; exit 1 when a problem is found (or unknown, with --strict)."""
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        clients, region = new_clients(args.profile, args.region)
        show = _progress(sys.stderr)
        processor, checks = preflight(args, clients, region, resolve_mx=lookup_mx, progress=show)
        if sys.stderr.isatty():
            sys.stderr.write("\r".ljust(41) + "\r")
    except (OperationsError, BotoCoreError, ClientError) as error:
        return _error(str(error))
    except KeyboardInterrupt:
        return _error("interrupted: preflight changes nothing", EXIT_INTERRUPTED)
    print_report(processor, checks, args.output)
    counts = summary(checks)
    failed = counts[PROBLEM] + (counts[UNKNOWN] if args.strict else 0)
    return cli.EXIT_PROBLEMS if failed else cli.EXIT_OK


def _error(message: str, status: int = cli.EXIT_PROBLEMS) -> int:
    cli.write_line(f"{cli.PROG} {COMMAND}: error: {' '.join(message.split())}", sys.stderr)
    return status
