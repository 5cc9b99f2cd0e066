"""The checks of ``preflight`` about identities, the account, the send budget, the queues and the
function: pure functions from what AWS answered (a ``Read``) to a ``Check``."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from bounce_runtime.contract import SEND_BOUNCE_WINDOW_S
from bounce_runtime.operations.preflight_checks import (
    OK,
    PROBLEM,
    UNKNOWN,
    Check,
    Processor,
    Read,
    unknown_check,
)

# SES's documented sandbox quotas: 200 messages per 24 hours, 1 message per second.
SANDBOX_MAX_24_HOUR_SEND: Final = 200.0
SANDBOX_MAX_SEND_RATE: Final = 1.0
# A main queue whose oldest message is this old is a backlog that eats into the 24-hour window.
BACKLOG_AGE_S: Final = 3600.0


# Identities --------------------------------------------------------------------------------------


def _parents(name: str) -> list[str]:
    """``name`` (an address or a domain), its domain and that domain's parent domains."""
    name = name.lower()
    names = [name]
    domain = name.rpartition("@")[2]
    labels = domain.split(".")
    names += [".".join(labels[i:]) for i in range(len(labels) - 1)]
    return list(dict.fromkeys(names))


def identity_names(processor: Processor) -> list[str]:
    """The identities whose verification status the checks need."""
    names = [n for r in processor.recipients for n in _parents(r)]
    if processor.bounce_sender:
        names += _parents(processor.bounce_sender)
    return list(dict.fromkeys(names))


def _verified_by(name: str, statuses: Mapping[str, Any]) -> str | None:
    for candidate in _parents(name):
        attributes = statuses.get(candidate)
        if isinstance(attributes, Mapping) and attributes.get("VerificationStatus") == "Success":
            return candidate
    return None


def _pending(name: str, statuses: Mapping[str, Any]) -> str:
    seen = [
        f"{c}: {statuses[c].get('VerificationStatus')}"
        for c in _parents(name)
        if isinstance(statuses.get(c), Mapping)
    ]
    return f" ({'; '.join(seen)})" if seen else " (not an identity in this region)"


def check_bounce_sender(processor: Processor, statuses: Read) -> Check:
    name = "bounce-sender-identity"
    sender = processor.bounce_sender
    if sender is None:
        return Check(name, UNKNOWN, "the bounce sender is not known", "give --function")
    if processor.bounce_sender_arn and _arn_account(processor.bounce_sender_arn) not in (
        None,
        processor.account,
    ):
        return Check(
            name,
            OK,
            f"{sender} is sent through {processor.bounce_sender_arn}, another account's identity "
            "(see sending-authorization)",
        )
    if not statuses.ok:
        return unknown_check(name, "identities", statuses, "ses:GetIdentityVerificationAttributes")
    by = _verified_by(sender, statuses.value)
    if by:
        return Check(name, OK, f"bounce sender {sender} is verified (identity {by})")
    return Check(
        name,
        PROBLEM,
        f"bounce sender {sender} is not a verified identity{_pending(sender, statuses.value)}: "
        "SendBounce is refused (ses-rejected:MessageRejected)",
        f"verify {sender.rpartition('@')[2]} (or {sender}) in SES in {processor.region}",
    )


def check_recipient_identities(processor: Processor, statuses: Read) -> Check:
    name = "recipient-identities"
    if not processor.recipients:
        return Check(name, UNKNOWN, "the processor's recipients are not known", "give --function")
    if not statuses.ok:
        return unknown_check(name, "identities", statuses, "ses:GetIdentityVerificationAttributes")
    missing = [r for r in processor.recipients if not _verified_by(r, statuses.value)]
    if missing:
        return Check(
            name,
            PROBLEM,
            "SES receives mail only for verified identities; not verified here: "
            + ", ".join(f"{m}{_pending(m, statuses.value)}" for m in missing),
            f"verify these domains or addresses in SES in {processor.region}",
        )
    return Check(name, OK, f"every recipient is verified: {', '.join(processor.recipients)}")


def _arn_account(arn: str) -> str | None:
    parts = arn.split(":", 5)
    return parts[4] if len(parts) == 6 and parts[4] else None


def _principals(statement: Mapping[str, Any]) -> list[str]:
    principal = statement.get("Principal")
    if principal == "*":
        return ["*"]
    if isinstance(principal, Mapping):
        aws = principal.get("AWS", [])
        return [aws] if isinstance(aws, str) else [p for p in aws if isinstance(p, str)]
    return []


def policy_allows_send_bounce(document: str, account: str) -> bool:
    """Whether an identity policy has an Allow of SendBounce for a principal in ``account``
    (conditions are not evaluated: a condition can still deny what this reports as allowed)."""
    try:
        policy = json.loads(document)
    except ValueError:
        return False
    statements = policy.get("Statement") if isinstance(policy, Mapping) else None
    if isinstance(statements, Mapping):
        statements = [statements]
    for statement in statements or []:
        if not isinstance(statement, Mapping) or statement.get("Effect") != "Allow":
            continue
        actions = statement.get("Action", [])
        actions = [actions] if isinstance(actions, str) else actions
        if not any(a.lower() in {"ses:sendbounce", "ses:*", "*"} for a in actions):
            continue
        for principal in _principals(statement):
            if principal in ("*", account) or _arn_account(principal) == account:
                return True
    return False


def check_sending_authorization(processor: Processor, policies: Mapping[str, Read]) -> Check:
    """Identities used through ARNs (``bounce_sender_arn``, recipient ARNs) of another account
    must let this account call SendBounce (their owner's sending-authorization policy)."""
    name = "sending-authorization"
    arns = [a for a in [processor.bounce_sender_arn, *processor.recipient_arns.values()] if a]
    foreign = sorted({a for a in arns if _arn_account(a) not in (None, processor.account)})
    if not foreign:
        used = "no identity ARN is used" if not arns else "the identity ARNs are this account's"
        return Check(name, OK, f"{used}: no sending authorization needed")
    if processor.account is None:
        return Check(name, UNKNOWN, "this account is not known", "give --function")
    denied, unknown = [], []
    for arn in foreign:
        read = policies.get(arn, Read(error="not read"))
        if not read.ok:
            unknown.append(f"{arn} ({read.error})")
        elif not any(policy_allows_send_bounce(d, processor.account) for d in read.value.values()):
            denied.append(arn)
    if denied:
        return Check(
            name,
            PROBLEM,
            f"no sending-authorization policy lets account {processor.account} call SendBounce "
            f"for {', '.join(denied)}",
            "ask the identity's owner to add a policy allowing ses:SendBounce for this account",
        )
    if unknown:
        return Check(
            name,
            UNKNOWN,
            "only the identity's owner can read its policies: " + "; ".join(unknown),
            "run preflight with the owner's credentials, or check the policy with the owner",
        )
    return Check(name, OK, f"policies let account {processor.account} bounce for {foreign}")


# The account -------------------------------------------------------------------------------------


def check_account_sending(enabled: Read, quota: Read) -> Check:
    name = "account-sending"
    if enabled.ok and enabled.value is False:
        return Check(
            name,
            PROBLEM,
            "SES sending is paused for this account in this region (GetAccountSendingEnabled): "
            "SES sends no email from it, and a bounce is email SES sends",
            "resolve the pause in the SES console (account dashboard), then resume sending",
        )
    if not quota.ok:
        return unknown_check(name, "the send quota", quota, "ses:GetSendQuota")
    limit = float(quota.value.get("Max24HourSend", 0))
    rate = float(quota.value.get("MaxSendRate", 0))
    sent = float(quota.value.get("SentLast24Hours", 0))
    if limit >= 0 and sent >= limit > 0:
        return Check(
            name,
            PROBLEM,
            f"the 24-hour send quota is used up ({sent:g} of {limit:g}): SES refuses sends",
            "request a higher quota, or wait",
        )
    if limit <= SANDBOX_MAX_24_HOUR_SEND and rate <= SANDBOX_MAX_SEND_RATE:
        return Check(
            name,
            PROBLEM,
            f"the account looks like it is in the SES sandbox (quota {limit:g} per 24 h, "
            f"{rate:g}/s, the sandbox's): SES documents that the sandbox sends only to verified "
            "addresses; whether SendBounce to an unverified sender is refused is not documented, "
            "so expect bounces to outside senders to fail",
            "request production access for SES in this region",
        )
    state = "" if enabled.ok else f" (sending status unread: {enabled.error})"
    return Check(name, OK, f"production quota: {limit:g} per 24 h, {rate:g}/s{state}")


def check_budget(processor: Processor, simulation: Read, item: Read | None) -> Check:
    """The function's role may take slots (UpdateItem and GetItem on the budget's item)."""
    name = "send-budget"
    if processor.budget_table is None:
        return Check(name, UNKNOWN, "the budget table is not known", "give --function")
    if simulation.ok:
        denied = [
            f"{r.get('EvalActionName')}: {r.get('EvalDecision')}"
            for r in simulation.value
            if r.get("EvalDecision") != "allowed"
        ]
        if denied:
            return Check(
                name,
                PROBLEM,
                f"the function's role may not use budget table {processor.budget_table}: "
                f"{', '.join(denied)}; every bounce waits, then dead-letters "
                "(retries-exhausted:send-budget-unavailable)",
                "deploy the stack again; a budget from another stack needs grant_take_slots",
            )
        return Check(name, OK, f"the function's role may take slots in {processor.budget_table}")
    if item is None or not item.ok:
        why = item.error if item is not None else "not read"
        if item is not None and item.code == "ResourceNotFoundException":
            return Check(
                name, PROBLEM, f"budget table {processor.budget_table} does not exist", "deploy"
            )
        return Check(
            name,
            UNKNOWN,
            f"neither simulated ({simulation.error}) nor read ({why})",
            "allow iam:SimulatePrincipalPolicy on the function's role (`grant_preflight`)",
        )
    return Check(
        name,
        OK,
        f"budget table {processor.budget_table} is reachable (read with your credentials; the "
        f"role's permissions were not simulated: {simulation.error})",
    )


def check_dead_letters(attributes: Read, oldest_age_s: Read) -> Check:
    name = "dead-letters"
    if not attributes.ok:
        return unknown_check(name, "the dead-letter queue", attributes, "sqs:GetQueueAttributes")
    count = sum(
        int(attributes.value.get(key, 0))
        for key in ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible")
    )
    if count == 0:
        return Check(name, OK, "the dead-letter queue is empty")
    age = oldest_age_s.value if oldest_age_s.ok else None
    late = (
        f"; the oldest has waited {age / 3600:.1f} h"
        + (" (past the 24-hour SendBounce window)" if age >= SEND_BOUNCE_WINDOW_S else "")
        if isinstance(age, int | float)
        else ""
    )
    return Check(
        name,
        PROBLEM,
        f"{count} dead letters{late}: mail that was not bounced",
        "cdk-ses-bounce dead-letters list --stack ... (docs/operations.md, 'Dead letters')",
    )


def check_queue_age(attributes: Read, oldest_age_s: Read) -> Check:
    name = "queue-backlog"
    if not oldest_age_s.ok:
        return unknown_check(
            name, "the queue's age metric", oldest_age_s, "cloudwatch:GetMetricStatistics"
        )
    waiting = int(attributes.value.get("ApproximateNumberOfMessages", 0)) if attributes.ok else 0
    age = oldest_age_s.value
    if isinstance(age, int | float) and age >= BACKLOG_AGE_S:
        return Check(
            name,
            PROBLEM,
            f"the oldest message has waited {age / 3600:.1f} h ({waiting} waiting): SendBounce "
            "works only within 24 h of receipt",
            "check the function's errors and throttling; raise the budget's rate if it limits",
        )
    shown = "no recent datapoint" if age is None else f"oldest message {age:g} s"
    return Check(name, OK, f"no backlog ({shown}; {waiting} waiting)")


def check_function_errors(errors: Read, hours: int) -> Check:
    name = "function-errors"
    if not errors.ok:
        return unknown_check(
            name, "the function's Errors metric", errors, "cloudwatch:GetMetricStatistics"
        )
    points: Sequence[Mapping[str, Any]] = errors.value
    failing = [p for p in points if float(p.get("Sum", 0)) > 0]
    if not failing:
        return Check(name, OK, f"no function errors in the last {hours} h")
    total = sum(float(p["Sum"]) for p in failing)
    last = max(_utc(p.get("Timestamp")) for p in failing)
    return Check(
        name,
        PROBLEM,
        f"{total:g} function errors in the last {hours} h (last in the hour from {last})",
        "read the function's log group (an invalid configuration is named there)",
    )


def _utc(value: Any) -> str:
    """A datapoint's time as ``2026-12-01T03:00Z`` (as given when it is not a datetime)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return str(value)
