"""The policy written back in its canonical JSON form (every setting spelled out), which
``core.policy_form`` reads back. Pure; imports ``core.policy`` only for type checking."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from bounce_runtime.core.policy_form import POLICY_VERSION
from bounce_runtime.core.policy_parts import (
    GUARD_NAMES,
    AcceptAction,
    Action,
    MessageSettings,
    Rule,
    SuppressAction,
)

if TYPE_CHECKING:
    from bounce_runtime.core.policy import BouncePolicy


def policy_to_dict(policy: BouncePolicy) -> dict[str, Any]:
    """The canonical JSON form (every setting spelled out); ``parse_policy`` reads it back."""
    return {
        "version": POLICY_VERSION,
        "rules": [_rule_to_dict(rule) for rule in policy.rules],
        "default": _action_to_dict(policy.default),
        "fold_subaddress": policy.fold_subaddress,
        "message": _message_to_dict(policy.message),
        "guards": {
            **{name: getattr(policy.guards, name) for name in GUARD_NAMES},
            "sender_authentication": list(policy.guards.sender_authentication),
        },
    }


def _action_to_dict(action: Action) -> dict[str, Any]:
    if isinstance(action, SuppressAction):
        return {"type": "suppress", "reason": action.reason}
    if isinstance(action, AcceptAction):
        return {"type": "accept"}
    result: dict[str, Any] = {"type": "bounce", "bounce_type": action.bounce_type}
    if action.dsn is not None:
        dsn = {
            key: getattr(action.dsn, key)
            for key in ("action", "status", "diagnostic_code", "remote_mta", "last_attempt_date")
            if getattr(action.dsn, key) is not None
        }
        if action.dsn.extension_fields:
            dsn["extension_fields"] = dict(action.dsn.extension_fields)
        result["dsn"] = dsn
    return result


def _rule_to_dict(rule: Rule) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if rule.match.recipients is not None:
        match["recipients"] = list(rule.match.recipients)
    if rule.match.senders is not None:
        match["senders"] = list(rule.match.senders)
    if rule.match.min_size_bytes is not None:
        match["min_size_bytes"] = rule.match.min_size_bytes
    if rule.match.max_size_bytes is not None:
        match["max_size_bytes"] = rule.match.max_size_bytes
    if rule.match.verdicts:
        match["verdicts"] = {name: list(statuses) for name, statuses in rule.match.verdicts}
    result: dict[str, Any] = {"match": match, "action": _action_to_dict(rule.action)}
    if rule.name is not None:
        result = {"name": rule.name, **result}
    return result


def _message_to_dict(message: MessageSettings) -> dict[str, Any]:
    result: dict[str, Any] = {}
    if message.explanation is not None:
        result["explanation"] = message.explanation
    if message.reporting_mta is not None:
        result["reporting_mta"] = message.reporting_mta
    if message.extension_fields:
        result["extension_fields"] = dict(message.extension_fields)
    return result
