"""Commands ``plan`` and ``validate-policy``: preview the bounce plan for a notification, check
a policy file.

``plan --notification N.json --bounce-sender ADDR ...`` makes no AWS call and prints one JSON
document; ``validate-policy P.json`` prints a one-line summary of a valid policy.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime, timedelta
from typing import Any

from bounce_runtime.cli import write_json, write_line
from bounce_runtime.contract import (
    IDENTITY_ARN_FORM,
    REASON_FOREIGN_MAIL_OBJECT,
    identity_arn_problem,
    recipient_key,
)
from bounce_runtime.core.addresses import bare_address_problem, is_mail_domain
from bounce_runtime.core.decision import MessagePlan, needs_full_headers, plan_message
from bounce_runtime.core.dsn import SenderIdentity, build_send_bounce_request, format_timestamp
from bounce_runtime.core.headers import parse_raw_headers
from bounce_runtime.core.notification import parse_notification_body
from bounce_runtime.core.ownership import OwnedRecipients, mail_object_problem
from bounce_runtime.core.policy import GUARD_NAMES, BounceAction, BouncePolicy, default_policy
from bounce_runtime.core.policy_json import load_policy_text
from bounce_runtime.core.setup_notification import (
    SETUP_NOTIFICATION_MESSAGE_ID,
    is_setup_notification,
)
from bounce_runtime.core.vocabulary import unicode_problem
from bounce_runtime.errors import CommandError, PolicyError

# Flags whose values are text (not file names, which may be any bytes the file system allows).
_TEXT_FLAGS = ("bounce_sender", "bounce_sender_arn", "now", "rule_recipients", "mail_bucket",
               "object_key_prefix")  # fmt: skip


def _read_text(path: str, what: str) -> str:
    try:
        if path == "-":  # read as bytes: a text stdin's decoding error would not name it
            stdin = getattr(sys.stdin, "buffer", None)
            return sys.stdin.read() if stdin is None else stdin.read().decode("utf-8")
        with open(path, encoding="utf-8") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as error:
        source = "standard input" if path == "-" else repr(path)
        raise CommandError(f"cannot read {what} {source}: {error}") from None


def _read_bytes(path: str, what: str) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except OSError as error:
        raise CommandError(f"cannot read {what} {path!r}: {error}") from None


def _load_policy(path: str | None) -> BouncePolicy:
    if path is None:
        return default_policy()
    try:
        return load_policy_text(_read_text(path, "policy"), full_check=True)
    except PolicyError as error:
        raise CommandError(f"invalid policy {path!r}: {error}") from None


def _recipient_arns(path: str | None) -> dict[str, str]:
    if path is None:
        return {}
    text = _read_text(path, "recipient ARNs")
    try:
        data = json.loads(text)
    except (ValueError, RecursionError) as error:
        raise CommandError(f"recipient ARNs {path!r}: not valid JSON ({error})") from None
    if not isinstance(data, dict) or not all(
        isinstance(key, str) and isinstance(value, str) for key, value in data.items()
    ):
        raise CommandError(
            f"recipient ARNs {path!r}: expected a JSON object of recipient domains or "
            "addresses to SES identity ARNs"
        )
    for key, value in data.items():
        if not (is_mail_domain(key) or bare_address_problem(key) is None):
            raise CommandError(
                f"recipient ARNs {path!r}: the key {key!r} is neither a domain nor a bare address"
            )
        if identity_arn_problem(value) is not None:
            raise CommandError(
                f"recipient ARNs {path!r}: {key!r} maps to {value!r}, which is not an SES "
                f"identity ARN {IDENTITY_ARN_FORM}"
            )
    return {recipient_key(key): value for key, value in data.items()}


def _rule_recipients(args: argparse.Namespace) -> OwnedRecipients | None:
    """``--rule-recipients a.example,b@c.example`` or ``--rule-recipients-file`` (a JSON list, as
    the construct passes it in OWNED_RECIPIENTS); None when neither is given."""
    if args.rule_recipients is not None:
        what = "--rule-recipients"
        values = [part.strip() for part in args.rule_recipients.split(",") if part.strip()]
    elif args.rule_recipients_file is not None:
        what = f"--rule-recipients-file {args.rule_recipients_file!r}"
        try:
            values = json.loads(_read_text(args.rule_recipients_file, "rule recipients"))
        except (ValueError, RecursionError) as error:
            raise CommandError(f"{what}: not valid JSON ({error})") from None
        if not isinstance(values, list):
            raise CommandError(f"{what}: expected a JSON list of domains and addresses")
    else:
        return None
    if not values:
        raise CommandError(f"{what}: expected at least one domain or address")
    try:
        return OwnedRecipients.of(values)
    except ValueError as error:
        raise CommandError(f"{what}: {error}") from None


def _check_text_flags(args: argparse.Namespace) -> None:
    """Refuse a flag value UTF-8 cannot encode (a lone surrogate, from argument bytes that are not
    UTF-8), then a bounce sender that is not one bare address, naming the flag."""
    for name in _TEXT_FLAGS:
        value = getattr(args, name)
        if isinstance(value, str) and (problem := unicode_problem(value)) is not None:
            raise CommandError(f"--{name.replace('_', '-')} {value!r} {problem}")
    if (problem := bare_address_problem(args.bounce_sender)) is not None:
        raise CommandError(f"--bounce-sender {args.bounce_sender!r} {problem}")
    arn = args.bounce_sender_arn
    if arn is not None and (problem := identity_arn_problem(arn)) is not None:
        raise CommandError(f"--bounce-sender-arn {arn!r} {problem}")


def _parse_now(text: str | None) -> datetime:
    if text is None:
        return datetime.now(UTC)
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        moment = None
    if moment is None or moment.tzinfo is None:
        raise CommandError(
            f"--now {text!r}: expected an ISO 8601 time with a time zone, e.g. 2024-05-01T12:00:00Z"
        )
    try:  # in UTC, with room for the 24-hour window after it
        in_range = moment.astimezone(UTC) <= datetime.max.replace(tzinfo=UTC) - timedelta(days=2)
    except OverflowError:
        in_range = False
    if not in_range:
        raise CommandError(f"--now {text!r}: out of range (years 1 to 9998)")
    return moment


def _decision_json(plan: MessagePlan) -> list[dict[str, Any]]:
    rows = []
    for decision in plan.decisions:
        bounce = decision.bounce
        rows.append(
            {
                "recipient": decision.recipient,
                "action": decision.action,
                "reason": decision.reason,
                "rule": decision.rule,
                "bounce_type": bounce.bounce_type if isinstance(bounce, BounceAction) else None,
                # With BounceType alone SES writes the DSN itself: no status of ours to show.
                "dsn_status": (
                    bounce.dsn_status
                    if isinstance(bounce, BounceAction) and bounce.dsn is not None
                    else None
                ),
            }
        )
    return rows


def _plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> dict[str, Any]:
    """The plan document of ``plan``."""
    _check_text_flags(args)
    policy = _load_policy(args.policy)
    if policy.needs_object_size and args.object_size is None:
        parser.error("--object-size is required: the policy matches on message size")
    now = _parse_now(args.now)
    sender = SenderIdentity(
        bounce_sender=args.bounce_sender,
        bounce_sender_arn=args.bounce_sender_arn,
        recipient_arns=_recipient_arns(args.recipient_arns),
    )
    body = _read_text(args.notification, "notification")
    if is_setup_notification(body):  # as the runtime: acknowledged, whatever else it carries
        return {
            "ses_message_id": SETUP_NOTIFICATION_MESSAGE_ID,
            "outcome": "setup-notification",
            "detail": "SES's setup notification (published when the receipt rule is saved) is "
            "not mail: the runtime acknowledges it and counts it; nothing is bounced, read, "
            "tagged or dead-lettered",
            "decisions": [],
            "request": None,
        }
    notification = parse_notification_body(body)
    owned = _rule_recipients(args)
    if args.object_key_prefix and args.mail_bucket is None:
        parser.error("--object-key-prefix needs --mail-bucket")
    if args.mail_bucket is not None:
        problem = mail_object_problem(
            notification, bucket=args.mail_bucket, prefix=args.object_key_prefix
        )
        if problem is not None:  # the runtime dead-letters it before any S3 call
            return {
                "ses_message_id": notification.mail.message_id,
                "outcome": "dead-letter",
                "reason": REASON_FOREIGN_MAIL_OBJECT,
                "detail": problem,
                "decisions": [],
                "request": None,
            }
    warnings = []
    headers = None
    if args.headers_from is not None:
        headers = parse_raw_headers(_read_bytes(args.headers_from, "message"))
    elif needs_full_headers(notification, policy):
        warnings.append(
            "mail.headersTruncated is true: the header guards saw only the notification's "
            "headers; pass --headers-from MESSAGE.eml to check the full header block"
        )
    plan = plan_message(
        notification,
        policy,
        now=now,
        object_size=args.object_size,
        headers=headers,
        owned=owned,
    )
    return {
        "ses_message_id": notification.mail.message_id,
        "mail_timestamp": format_timestamp(notification.mail.timestamp),
        "now": format_timestamp(now),
        "sender": notification.mail.source,
        "outcome": plan.outcome,
        "reason": plan.reason,
        "decisions": _decision_json(plan),
        "warnings": warnings,
        "request": build_send_bounce_request(plan, sender),
    }


def _policy_summary(path: str) -> str:
    policy = _load_policy(path)
    guards_on = [name for name in GUARD_NAMES if getattr(policy.guards, name)]
    default = policy.default
    default_text = (
        f"bounce ({default.bounce_type})" if isinstance(default, BounceAction) else default.type
    )
    return (
        f"ok: {path}: {len(policy.rules)} rules, {policy.pattern_count()} address patterns, "
        f"default {default_text}, guards on: {', '.join(guards_on) or 'none'}, "
        f"sender authentication: {'/'.join(policy.guards.sender_authentication)}, "
        f"needs object size: {'yes' if policy.needs_object_size else 'no'}"
    )


def _non_negative_int(text: str) -> int:
    try:  # ASCII digits only: int() would also read Arabic-Indic or fullwidth ones
        value = int(text) if text.isascii() else -1
    except ValueError:
        value = -1
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of bytes >= 0")
    return value


def add_commands(commands: Any) -> None:
    """Add ``plan`` and ``validate-policy`` to the ``add_subparsers()`` object ``commands``."""
    plan = commands.add_parser(
        "plan", help="print the decisions and SendBounce request for a notification (no AWS call)"
    )
    plan.add_argument(
        "--notification", required=True, help="SQS body / SES notification JSON file; - for stdin"
    )
    plan.add_argument("--bounce-sender", required=True, help="From address of the bounce")
    plan.add_argument("--bounce-sender-arn", help="identity ARN for sending authorization")
    plan.add_argument(
        "--recipient-arns", help="JSON file: recipient domain or address -> identity ARN"
    )
    plan.add_argument("--policy", help="policy JSON file (default: the default policy)")
    plan.add_argument(
        "--object-size", type=_non_negative_int, help="size of the stored message in bytes"
    )
    plan.add_argument(
        "--headers-from", help="raw message file whose header block the header guards read"
    )
    plan.add_argument("--now", help="ISO 8601 time with zone (default: the current time)")
    owned = plan.add_mutually_exclusive_group()
    owned.add_argument(
        "--rule-recipients",
        help="the receipt rule's recipients, comma-separated (a.example,b@c.example): any other "
        "recipient is not bounced (default: no ownership check)",
    )
    owned.add_argument(
        "--rule-recipients-file", help="JSON list of the receipt rule's domains and addresses"
    )
    plan.add_argument(
        "--mail-bucket",
        help="the bucket the receipt rule writes to: a notification naming another object is "
        "dead-lettered (default: no check)",
    )
    plan.add_argument(
        "--object-key-prefix", default="", help="the rule's object key prefix (default: none)"
    )
    plan.set_defaults(run=lambda args: _print_plan(args, plan))
    validate = commands.add_parser("validate-policy", help="check a policy JSON file")
    validate.add_argument("policy", help="policy JSON file")
    validate.set_defaults(run=_print_policy_summary)


def _print_plan(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    write_json(_plan(args, parser))
    return 0


def _print_policy_summary(args: argparse.Namespace) -> int:
    write_line(_policy_summary(args.policy))
    return 0
