"""The one error form: each class's reason is the contract's, retryable means exactly the
contract's retry reasons, and no reason is spelled anywhere in the runtime but contract.py."""

from __future__ import annotations

import ast
from pathlib import Path

from bounce_runtime import contract, errors

PACKAGE = Path(errors.__file__).parent


def _error_classes() -> list[type[errors.ReasonedError]]:
    return [
        value
        for value in vars(errors).values()
        if isinstance(value, type) and issubclass(value, errors.ReasonedError) and value.reason
    ]


def _contract_reasons() -> set[str]:
    return {
        value
        for name, value in vars(contract).items()
        if name.startswith("REASON_") and isinstance(value, str)
    }


def test_every_error_reason_is_a_class_attribute_from_the_contract() -> None:
    reasons = _contract_reasons()
    for cls in _error_classes():
        assert "reason" in vars(cls), cls  # declared by the class itself, not per instance
        assert cls.reason in reasons, cls
    assert errors.PolicyError.reason in reasons
    assert errors.CommandError.reason in reasons


def test_retryable_classes_and_the_contract_retry_reasons_agree_both_ways() -> None:
    retryable = {cls.reason for cls in _error_classes() if issubclass(cls, errors.RetryableError)}
    permanent = {cls.reason for cls in _error_classes() if issubclass(cls, errors.PermanentError)}
    assert retryable == set(contract.RETRY_REASONS)
    assert not permanent & set(contract.RETRY_REASONS)
    assert permanent - {contract.REASON_INVALID_CONFIG} <= set(contract.DEAD_LETTER_REASONS)


def test_a_detail_suffix_is_appended_one_way() -> None:
    error = errors.SesRejected("SES rejected SendBounce", detail="MessageRejected")
    assert error.reason == "ses-rejected:MessageRejected"
    assert errors.SesRejected.reason == "ses-rejected"  # the class keeps its own
    assert str(error) == "SES rejected SendBounce"


# Words that are also reasons, spelled where they mean something else: the policy's field-path
# root, a plan outcome (MessagePlan.outcome), a header name (lowercased Auto-Submitted).
HOMONYMS = {
    ("cli/plan.py", "policy"),
    ("core/policy_json.py", "policy"),
    ("core/policy_form.py", "policy"),
    ("core/decision.py", "expired"),
    ("workflow.py", "expired"),
    ("core/decision.py", "auto-submitted"),
}


def test_no_reason_literal_outside_the_contract() -> None:
    reasons = _contract_reasons()
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "contract.py":
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef))
            and node.body
            and isinstance(node.body[0], ast.Expr)
            and isinstance(node.body[0].value, ast.Constant)
        }
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Constant)
                and isinstance(node.value, str)
                and id(node) not in docstrings
                and node.value.split(":", 1)[0] in reasons
                and (str(path.relative_to(PACKAGE)), node.value.split(":", 1)[0]) not in HOMONYMS
            ):
                found.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: {node.value!r}")
    assert found == []
