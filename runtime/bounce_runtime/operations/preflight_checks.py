"""The checks of ``preflight``: pure functions from what AWS (and DNS) answered to a verdict.

Each check returns ``Check``: ``ok``, ``problem`` (mail will not be bounced, or not all of it) or
``unknown`` (the answer could not be read: a missing permission, an unreachable resolver), with
what it means and how to fix it. The AWS reads are in ``preflight_reads``; here an answer is a
``Read``: its value, or the error code and message AWS gave instead.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from bounce_runtime.operations.dns_mx import ANSWERED, NO_SUCH_DOMAIN, MxLookup

OK: Final = "ok"
PROBLEM: Final = "problem"
UNKNOWN: Final = "unknown"

DESCRIBE_ACTIVE: Final = "ses:DescribeActiveReceiptRuleSet"
# Every check, in report order (docs/operations.md has a row for each; the tests hold both).
CHECK_NAMES: Final = (
    "function",
    "receiving-region",
    "rule-set-active",
    "rule",
    "earlier-stop-rule",
    "bounce-sender-identity",
    "recipient-identities",
    "sending-authorization",
    "mx-records",
    "account-sending",
    "send-budget",
    "dead-letters",
    "queue-backlog",
    "function-errors",
)


@dataclass(frozen=True)
class Check:
    """One line of the report."""

    name: str
    status: str
    meaning: str
    fix: str = ""

    def to_json(self) -> dict[str, str]:
        return {"check": self.name, "status": self.status, "meaning": self.meaning, "fix": self.fix}


@dataclass(frozen=True)
class Read:
    """An AWS answer: ``value``, or ``error`` (``code: message``) when the call failed."""

    value: Any = None
    error: str | None = None
    code: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True)
class Processor:
    """What preflight knows of the processor (from the stack, the options, the function)."""

    region: str
    account: str | None = None
    rule_set: str | None = None
    rule: str | None = None
    recipients: tuple[str, ...] = ()
    bounce_sender: str | None = None
    bounce_sender_arn: str | None = None
    recipient_arns: Mapping[str, str] = field(default_factory=dict)
    function_name: str | None = None
    function_role_arn: str | None = None
    budget_table: str | None = None
    budget_id: str | None = None
    queue_url: str | None = None
    dead_letter_queue_url: str | None = None


def unknown_check(name: str, what: str, read: Read, needs: str) -> Check:
    missing = read.code in {"AccessDenied", "AccessDeniedException", "UnauthorizedOperation"}
    fix = f"allow {needs} to the caller (`grant_preflight`)" if missing else "run it again"
    return Check(name, UNKNOWN, f"could not read {what}: {read.error}", fix)


# Receiving ---------------------------------------------------------------------------------------


def check_receiving_region(region: str, active: Read) -> Check:
    """SES answers the receiving API here (``InvalidAction`` where the region receives no mail)."""
    name = "receiving-region"
    if active.ok:
        return Check(name, OK, f"{region} receives mail: SES answered its receiving API")
    if active.code == "InvalidAction" or "Unavailable Operation" in (active.error or ""):
        return Check(
            name,
            PROBLEM,
            f"SES does not receive mail in {region}: {active.error}",
            "deploy the processor in a region where SES receives mail (see the SES endpoints "
            "table, 'Email receiving')",
        )
    return unknown_check(
        name, "the active receipt rule set", active, "ses:DescribeActiveReceiptRuleSet"
    )


def _rules(rule_set: Any) -> list[Mapping[str, Any]]:
    rules = rule_set.get("Rules") if isinstance(rule_set, Mapping) else None
    return [rule for rule in rules or [] if isinstance(rule, Mapping)]


def _covers(rule_recipient: str, recipient: str) -> bool:
    """Whether a receipt rule's recipient entry matches mail for ``recipient`` (an address or a
    domain the processor owns): the same entry, its domain, or a ``.parent`` subdomain entry."""
    entry, ours = rule_recipient.lower().rstrip("."), recipient.lower().rstrip(".")
    domain = ours.rpartition("@")[2]
    if entry.startswith("."):
        return domain.endswith(entry)
    return entry in (ours, domain)


def check_rule_set(processor: Processor, active: Read, own: Read | None) -> list[Check]:
    """The rule set is the active one; the rule is in it, enabled, with the construct's
    recipients; no earlier enabled rule with a StopAction catches the same recipients."""
    checks: list[Check] = []
    name = "rule-set-active"
    if not active.ok:
        return [
            unknown_check(name, "the active rule set", active, "ses:DescribeActiveReceiptRuleSet")
        ]
    metadata = active.value.get("Metadata") if isinstance(active.value, Mapping) else None
    active_name = metadata.get("Name") if isinstance(metadata, Mapping) else None
    if processor.rule_set is None:
        return [Check(name, UNKNOWN, "the processor's rule set is not known", "give --rule-set")]
    activate = (
        f"activate it: aws ses set-active-receipt-rule-set --rule-set-name {processor.rule_set} "
        "(or deploy with activate_rule_set=True)"
    )
    if active_name == processor.rule_set:
        checks.append(Check(name, OK, f"rule set {processor.rule_set!r} is the active one"))
        rule_set = active.value
    else:
        now = f"{active_name!r} is active" if active_name else "no rule set is active"
        checks.append(
            Check(
                name,
                PROBLEM,
                f"rule set {processor.rule_set!r} is not active ({now}): SES applies none of its "
                "rules, so no mail reaches the processor",
                activate,
            )
        )
        if own is None or not own.ok:
            return checks
        rule_set = own.value
    checks.append(_check_rule(processor, _rules(rule_set)))
    if active_name == processor.rule_set:
        checks.append(_check_earlier_stop(processor, _rules(rule_set)))
    return checks


def _check_rule(processor: Processor, rules: list[Mapping[str, Any]]) -> Check:
    name = "rule"
    rule = next((r for r in rules if r.get("Name") == processor.rule), None)
    if rule is None:
        return Check(
            name,
            PROBLEM,
            f"rule {processor.rule!r} is not in rule set {processor.rule_set!r}",
            "deploy the stack again; the rule may have been deleted by hand",
        )
    if not rule.get("Enabled", False):
        return Check(
            name,
            PROBLEM,
            f"rule {processor.rule!r} is disabled: SES skips it",
            "enable it (aws ses describe-receipt-rule / update-receipt-rule) or deploy again",
        )
    found = {r.lower() for r in rule.get("Recipients") or []}
    wanted = {r.lower() for r in processor.recipients}
    if wanted and found != wanted:
        return Check(
            name,
            PROBLEM,
            f"rule {processor.rule!r} matches {sorted(found) or 'every recipient'}, the processor "
            f"owns {sorted(wanted)}: the rule was changed outside the stack",
            "deploy the stack again (drift)",
        )
    return Check(name, OK, f"rule {processor.rule!r} is enabled for {sorted(found)}")


def _check_earlier_stop(processor: Processor, rules: list[Mapping[str, Any]]) -> Check:
    name = "earlier-stop-rule"
    for rule in rules:
        if rule.get("Name") == processor.rule:
            break
        stops = any("StopAction" in action for action in rule.get("Actions") or [])
        if not (stops and rule.get("Enabled", False)):
            continue
        entries = rule.get("Recipients") or []
        caught = [
            ours
            for ours in processor.recipients
            if not entries or any(_covers(entry, ours) for entry in entries)
        ]
        if caught:
            return Check(
                name,
                PROBLEM,
                f"rule {rule.get('Name')!r} comes earlier in the active rule set and stops "
                f"processing (StopAction) for {', '.join(caught)}: this processor never sees "
                "that mail",
                "move the processor's rule before it, or narrow that rule's recipients",
            )
    return Check(name, OK, "no earlier rule stops processing for the processor's recipients")


# DNS ---------------------------------------------------------------------------------------------


def mx_domains(processor: Processor) -> list[str]:
    return list(dict.fromkeys(r.lower().rpartition("@")[2] for r in processor.recipients))


def check_mx(region: str, answers: Mapping[str, MxLookup]) -> Check:
    """Every recipient domain's MX points at SES's inbound endpoint of ``region``."""
    name = "mx-records"
    expected = f"inbound-smtp.{region}.amazonaws.com"
    if not answers:
        return Check(name, UNKNOWN, "the processor's recipients are not known", "give --function")
    wrong, unknown = [], []
    for domain, answer in answers.items():
        if answer.status == ANSWERED and expected in answer.hosts:
            continue
        if answer.status == ANSWERED:
            wrong.append(f"{domain} -> {', '.join(answer.hosts) or 'no MX record'}")
        elif answer.status == NO_SUCH_DOMAIN:
            wrong.append(f"{domain} does not exist in DNS")
        else:
            unknown.append(f"{domain} ({answer.detail})")
    if wrong:
        return Check(
            name,
            PROBLEM,
            f"mail for these domains does not go to SES in {region}: {'; '.join(wrong)}",
            f"publish an MX record '10 {expected}' for each (or use hosted_zone)",
        )
    if unknown:
        return Check(name, UNKNOWN, f"DNS did not answer: {'; '.join(unknown)}", "run it again")
    return Check(name, OK, f"the MX records of {', '.join(answers)} point at {expected}")


def summary(checks: Iterable[Check]) -> dict[str, int]:
    counts = {OK: 0, PROBLEM: 0, UNKNOWN: 0}
    for check in checks:
        counts[check.status] += 1
    return counts
