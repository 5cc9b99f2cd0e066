"""``dead-letters list`` and ``dead-letters replay``: the operator's commands for the dead-letter
queue of a deployed BounceProcessor.

``add_commands(subparsers)`` plugs the group into ``python -m bounce_runtime``. Exit status: 0 done,
1 problems found (a refusal, a message id not in the queue, an AWS error), 2 usage (bad or
missing options), 130 interrupted; every failure is one line on stderr, never a traceback. boto3
is imported and clients are created only when a command runs, so ``--help`` makes no AWS call.
Credentials and region come from the usual AWS environment (``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ...), overridden by ``--profile`` and ``--region``
(``command_support.new_session``); botocore's ``AWS_ENDPOINT_URL_<SERVICE>`` redirect the clients.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from functools import wraps
from typing import Final, TextIO

from bounce_runtime.adapters.pacing import Pacer
from bounce_runtime.cli import PROG
from bounce_runtime.errors import OperationsError, ReplayFailed, UsageError
from bounce_runtime.operations.command_support import (
    MAX_RATE,
    MIN_RATE,
    Clients,
    Progress,
    add_aws_options,
    int_in,
    rate,
)
from bounce_runtime.operations.dead_letters import (
    OUTCOME_CHECKED_FLAG,
    REASON_CLASSES,
    REPLAY_IF_NO_BOUNCE_SENT,
    REPLAY_NO,
    VISIBILITY_TIMEOUT_MAX_S,
    DeadLetterScan,
    ProcessorQueues,
    ProcessorScope,
    Replayer,
    ReplayOutcome,
    ReplaySelection,
    check_queue_pair,
    find_processor_function,
    find_processor_queues,
    format_table,
    printable,
    read_processor_scope,
    summarize,
)

GROUP: Final = "dead-letters"
# Bounds of the options.
MAX_MESSAGES_LIMIT: Final = 100_000  # SQS holds at most 120,000 in-flight messages per queue
DEFAULT_MAX_MESSAGES: Final = 1_000
# A replay holds what it reads for at least this many intervals between two sends, so the holds
# are renewed (at half time) before they can run out.
HOLD_INTERVALS: Final = 4
# The processor's default SendBounce rate: a replay at this rate builds no backlog of bounces.
DEFAULT_RATE: Final = 1.0
DEFAULT_HOLD_SECONDS: Final = 30
DEFAULT_WAIT_SECONDS: Final = 1
MAX_WAIT_SECONDS: Final = 20
EXIT_OK: Final = 0
EXIT_PROBLEMS: Final = 1
EXIT_USAGE: Final = 2
EXIT_INTERRUPTED: Final = 130


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    where = parser.add_argument_group(
        "queues", "the queue URLs, or the deployed stack and the processor's construct path"
    )
    where.add_argument("--dead-letter-queue-url", metavar="URL", help="the dead-letter queue")
    where.add_argument("--queue-url", metavar="URL", help="the main queue (replay only)")
    where.add_argument("--stack", metavar="NAME", help="CloudFormation stack name")
    where.add_argument(
        "--processor",
        metavar="PATH",
        help="the BounceProcessor's construct path inside the stack, e.g. BounceProcessor",
    )
    add_aws_options(parser)
    parser.add_argument(
        "--max-messages",
        type=int_in(1, MAX_MESSAGES_LIMIT),
        default=DEFAULT_MAX_MESSAGES,
        metavar="N",
        help=f"read at most N dead letters (default {DEFAULT_MAX_MESSAGES})",
    )
    parser.add_argument(
        "--hold-seconds",
        type=int_in(5, VISIBILITY_TIMEOUT_MAX_S),
        default=DEFAULT_HOLD_SECONDS,
        metavar="S",
        help="visibility timeout of the messages read, renewed while the command runs: if it "
        f"dies, they reappear within S seconds (default {DEFAULT_HOLD_SECONDS})",
    )
    parser.add_argument(
        "--wait-seconds",
        type=int_in(0, MAX_WAIT_SECONDS),
        default=DEFAULT_WAIT_SECONDS,
        metavar="S",
        help="long-poll time of each receive; with 0, SQS may answer 'empty' for a queue that "
        f"is not (default {DEFAULT_WAIT_SECONDS})",
    )


def add_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``dead-letters list`` and ``dead-letters replay`` (each sets ``run``)."""
    group = subparsers.add_parser(
        GROUP,
        help="triage and replay the dead-letter queue",
        description="Read the dead-letter queue without consuming it, and replay dead letters "
        "to the main queue. See docs/operations.md.",
    )
    actions = group.add_subparsers(dest="dead_letters_command", required=True)

    listing = actions.add_parser(
        "list",
        help="count dead letters by reason (does not consume them)",
        description="Group the dead letters by reason: count, oldest and newest, whether replay "
        "can help, sample SES message ids. Messages are only read: they become visible again "
        "when the command ends.",
    )
    _add_common_options(listing)
    listing.add_argument(
        "--json",
        dest="output",
        action="store_const",
        const="json",
        help="deprecated: same as --output json",
    )
    listing.add_argument(
        "--samples",
        type=int_in(0, 100),
        default=3,
        metavar="N",
        help="SES message ids shown per reason (default 3)",
    )
    listing.set_defaults(run=run_list)

    replay = actions.add_parser(
        "replay",
        help="send chosen dead letters back to the main queue (dry run unless --yes)",
        description="Send the chosen dead letters back to the main queue with their body "
        "unchanged, then delete them from the dead-letter queue. Without --yes nothing changes: "
        "the command prints what it would do. Reasons replay cannot help are refused.",
    )
    _add_common_options(replay)
    replay.add_argument(
        "--function-name",
        metavar="NAME",
        help="the processor's function (name or ARN), with the queue URLs: needed for "
        f"ses-outcome-unknown ({OUTCOME_CHECKED_FLAG}), to check each letter's mail bucket, "
        "prefix and send claim against it (found in the stack with --stack/--processor)",
    )
    replay.add_argument(
        "--reason",
        action="append",
        default=[],
        metavar="REASON",
        help="replay dead letters with this reason (e.g. ses-rejected, or "
        "ses-rejected:MessageRejected, or redriven-by-sqs); repeatable",
    )
    replay.add_argument(
        "--message-id",
        action="append",
        default=[],
        metavar="SES_ID",
        help="replay the dead letters of this SES message id; repeatable",
    )
    replay.add_argument("--yes", action="store_true", help="do it (default: dry run)")
    replay.add_argument(
        "--rate",
        type=rate,
        default=DEFAULT_RATE,
        metavar="PER_SECOND",
        help=f"messages sent per second (default {DEFAULT_RATE:g}; {MIN_RATE:g}-{MAX_RATE:g})",
    )
    replay.add_argument(
        OUTCOME_CHECKED_FLAG,
        dest="outcome_checked",
        action="store_true",
        help="allow ses-outcome-unknown dead letters: you checked that no bounce went out for "
        "them (a send claim is deleted only once it is older than the claim TTL)",
    )
    replay.set_defaults(run=run_replay)


def _fail_cleanly(command: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """Turn every error into one line on stderr and exit status 1 (130 on Ctrl-C)."""

    @wraps(command)
    def run(args: argparse.Namespace) -> int:
        # Without boto3 this raises ModuleNotFoundError, which the CLI's one handler turns into
        # the line saying what to install (cli.missing_aws_sdk_message).
        from botocore.exceptions import BotoCoreError, ClientError, NoRegionError

        try:
            return command(args)
        except UsageError as error:
            return _error(str(error), EXIT_USAGE)
        except NoRegionError:
            return _error("no AWS region: pass --region, or set AWS_DEFAULT_REGION or a profile")
        except ReplayFailed as error:
            _print_outcome(error.outcome, args=args, out=sys.stdout)
            return _error(str(error))
        except (OperationsError, ClientError, BotoCoreError, ValueError) as error:
            return _error(str(error))
        except BrokenPipeError:  # the reader went away (`... | head`): stop quietly
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 1
        except KeyboardInterrupt:
            return _error(
                "interrupted: the dead letters read are visible again (or will be within "
                f"{args.hold_seconds} s); those replayed so far are in the main queue",
                EXIT_INTERRUPTED,
            )
        except Exception as error:  # a bug or an answer AWS never gives: still one line
            return _error(f"unexpected {type(error).__name__}: {error}")

    return run


def _error(message: str, status: int = EXIT_PROBLEMS) -> int:
    text = printable(" ".join(message.split()))
    print(f"{PROG} {GROUP}: error: {text}", file=sys.stderr)
    return status


def _queues(args: argparse.Namespace, clients: Clients, *, main_queue: bool) -> ProcessorQueues:
    by_url = args.dead_letter_queue_url is not None or args.queue_url is not None
    by_stack = args.stack is not None or args.processor is not None
    if by_url and by_stack:
        raise UsageError("give the queue URLs or --stack and --processor, not both")
    if by_stack:
        if args.stack is None or args.processor is None:
            raise UsageError("--stack and --processor go together")
        return find_processor_queues(
            clients("cloudformation"), stack=args.stack, processor=args.processor
        )
    if args.dead_letter_queue_url is None or (main_queue and args.queue_url is None):
        needed = (
            "--queue-url and --dead-letter-queue-url" if main_queue else "--dead-letter-queue-url"
        )
        raise UsageError(f"give {needed}, or --stack and --processor")
    for url in (args.dead_letter_queue_url, args.queue_url):
        if url is not None and url.endswith(".fifo"):
            raise UsageError(f"{url}: a BounceProcessor's queues are standard, not FIFO")
    return ProcessorQueues(
        queue_url=args.queue_url or "", dead_letter_queue_url=args.dead_letter_queue_url
    )


def _scan(
    args: argparse.Namespace, clients: Clients, queue_url: str, *, min_hold_s: float = 0
) -> DeadLetterScan:
    return DeadLetterScan(
        clients("sqs"),
        queue_url,
        max_messages=args.max_messages,
        hold_seconds=min(VISIBILITY_TIMEOUT_MAX_S, max(args.hold_seconds, math.ceil(min_hold_s))),
        wait_seconds=args.wait_seconds,
    )


def _coverage(scan: DeadLetterScan) -> str:
    if scan.exhausted:
        return f"read all {scan.scanned} dead letters"
    return f"read {scan.scanned} dead letters, the --max-messages limit; there may be more"


@_fail_cleanly
def run_list(args: argparse.Namespace) -> int:
    """``dead-letters list``: the table (or JSON) of dead letters by reason."""
    clients = Clients(profile=args.profile, region=args.region)
    queue_url = _queues(args, clients, main_queue=False).dead_letter_queue_url
    with _scan(args, clients, queue_url) as scan:
        progress = Progress(sys.stderr, scan.approximate_count())
        scan.on_progress = progress
        summaries = summarize(scan, now=datetime.now(UTC), samples=args.samples)
    progress.done()
    if args.output == "json":
        document = {
            "dead_letter_queue_url": queue_url,
            "read": scan.scanned,
            "complete": scan.exhausted,
            "reasons": [summary.to_json() for summary in summaries],
        }
        print(json.dumps(document, indent=2))
    elif summaries:
        print(format_table(summaries))
        print(f"\n{_coverage(scan)}; messages stay in the queue.")
    else:
        print("the dead-letter queue is empty")
    return 0


def _selection(args: argparse.Namespace) -> ReplaySelection:
    if not args.reason and not args.message_id:
        raise UsageError("choose what to replay: --reason and/or --message-id")
    for reason in args.reason:
        group = reason.split(":", 1)[0]
        reason_class = REASON_CLASSES.get(group)
        if reason_class is None:
            raise UsageError(
                f"unknown reason {reason!r}; reasons: {', '.join(sorted(REASON_CLASSES))}"
            )
        if reason_class.replay == REPLAY_NO:
            raise OperationsError(
                f"refusing to replay {reason!r}: {reason_class.meaning}; replay cannot help"
            )
        if reason_class.replay == REPLAY_IF_NO_BOUNCE_SENT and not args.outcome_checked:
            raise OperationsError(
                f"refusing to replay {reason!r}: SES may have sent these bounces, and a replay "
                "could send a second one. Check that no bounce went out for each message, then "
                f"pass {OUTCOME_CHECKED_FLAG}"
            )
    return ReplaySelection(reasons=frozenset(args.reason), message_ids=frozenset(args.message_id))


def _print_outcome(outcome: ReplayOutcome, *, args: argparse.Namespace, out: TextIO) -> None:
    execute = bool(getattr(args, "yes", False))
    if getattr(args, "output", "text") == "json":
        print(json.dumps(outcome.to_json(executed=execute), indent=2), file=out)
        return
    verb = "replayed" if execute else "would replay"
    parts = [f"{verb} {len(outcome.replayed)}"]
    if outcome.duplicates:
        deleted = "deleted" if execute else "would delete"
        parts.append(f"{deleted} {len(outcome.duplicates)} duplicate copies")
    if outcome.refused:
        parts.append(f"refused {len(outcome.refused)}")
    print(", ".join(parts), file=out)


def _scope(
    args: argparse.Namespace, clients: Clients, queues: ProcessorQueues
) -> ProcessorScope | None:
    """What the processor's function acts on, read only when ses-outcome-unknown letters may
    be replayed (``--i-checked-no-bounce-was-sent``): their mail object and send claim are
    checked against it before any S3 call."""
    if args.function_name is not None and args.stack is not None:
        raise UsageError("--function-name goes with the queue URLs; --stack finds the function")
    if not args.outcome_checked:
        return None
    if args.stack is not None:
        name = find_processor_function(
            clients("cloudformation"), stack=args.stack, processor=args.processor
        )
    elif args.function_name is not None:
        name = args.function_name
    else:
        raise UsageError(
            f"{OUTCOME_CHECKED_FLAG} with queue URLs needs --function-name (the processor's "
            "function), so each letter's mail bucket, prefix and send claim can be checked"
        )
    return read_processor_scope(clients("lambda"), name, queues)


@_fail_cleanly
def run_replay(args: argparse.Namespace) -> int:
    """``dead-letters replay``: dry run, or (``--yes``) send to the main queue then delete."""
    selection = _selection(args)
    clients = Clients(profile=args.profile, region=args.region)
    queues = _queues(args, clients, main_queue=True)
    check_queue_pair(clients("sqs"), queues)
    scope = _scope(args, clients, queues)
    as_json = args.output == "json"
    lines = sys.stderr if as_json else sys.stdout
    hold = HOLD_INTERVALS / args.rate
    with _scan(args, clients, queues.dead_letter_queue_url, min_hold_s=hold) as scan:
        progress = Progress(sys.stderr, scan.approximate_count())
        scan.on_progress = progress
        replayer = Replayer(
            scan,
            clients("sqs"),
            queues.queue_url,
            execute=args.yes,
            outcome_checked=args.outcome_checked,
            pacer=Pacer(args.rate),
            now=lambda: datetime.now(UTC),
            s3=lambda: clients("s3"),
            report=lambda line: print(line, file=lines, flush=True),
            scope=scope,
        )
        outcome = replayer.run(selection)
    progress.done()
    if as_json:
        document = outcome.to_json(executed=args.yes) | {
            "read": scan.scanned,
            "complete": scan.exhausted,
        }
        print(json.dumps(document, indent=2))
    else:
        _print_outcome(outcome, args=args, out=sys.stdout)
        print(f"{_coverage(scan)}.")
        if not args.yes and outcome.replayed:
            print("dry run: nothing changed; add --yes to replay.")
    problems = []
    if outcome.refused:
        problems.append(f"{len(outcome.refused)} dead letters refused (see above); they stay")
    if outcome.not_found:
        problems.append(
            f"not among the {scan.scanned} dead letters read: {', '.join(outcome.not_found)}"
        )
    if problems:
        return _error("; ".join(problems))
    return EXIT_OK
