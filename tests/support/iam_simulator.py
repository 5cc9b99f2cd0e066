"""Ask a real IAM policy evaluator (@cloud-copilot/iam-simulate, under Node) for decisions.

`tools/iam/evaluate.mjs` runs as one Node process (Node starts slowly) that answers one batch of
requests per line. Every request names its principal, action, resource ARN, context keys, the
identity policies of its principal and the resource policy of its resource.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import subprocess
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Any, Self

REPO_ROOT = Path(__file__).resolve().parents[2]
EVALUATOR = REPO_ROOT / "tools" / "iam" / "evaluate.mjs"
ALLOWED = "Allowed"


@dataclass(frozen=True)
class IamRequest:
    """One authorization question: may `principal` do `action` on `resource` in this context?"""

    label: str
    principal: str
    action: str
    resource: str
    account: str
    context: Mapping[str, str | list[str]] = field(default_factory=dict)
    identity_policies: Sequence[str] = ()
    resource_policy: str | None = None

    def with_context(self, key: str, value: str | list[str]) -> IamRequest:
        """This request with one context key set (a twin of it)."""
        return dataclasses.replace(
            self, label=f"{self.label} ({key}={value})", context={**self.context, key: value}
        )

    def insecure(self) -> IamRequest:
        """This request over plain HTTP."""
        return self.with_context("aws:SecureTransport", "false")

    def describe(self) -> str:
        context = ", ".join(f"{k}={v}" for k, v in sorted(self.context.items()))
        return f"{self.label}: {self.principal} {self.action} {self.resource} [{context}]"


@dataclass(frozen=True)
class IamDecision:
    """The evaluator's answer to one request, with why when it is not Allowed."""

    request: IamRequest
    decision: str
    explanation: str = ""

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOWED

    def report(self) -> str:
        why = f"\n    why: {self.explanation}" if self.explanation else ""
        return f"{self.decision}: {self.request.describe()}{why}"


class EvaluatorError(RuntimeError):
    """The evaluator could not answer (bad input, a context key it does not know, a crash)."""


class IamSimulator:
    """One Node process running tools/iam/evaluate.mjs; `evaluate` sends it a batch."""

    def __init__(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise EvaluatorError("node is not on PATH (run `make setup`; node_modules/.bin first)")
        self._process = subprocess.Popen(
            [node, str(EVALUATOR)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=REPO_ROOT,
        )
        self.evaluated: list[IamDecision] = []

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._process.stdin is not None:
            self._process.stdin.close()
        try:
            self._process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait()

    def evaluate(
        self, policies: Mapping[str, Mapping[str, Any]], requests: Iterable[IamRequest]
    ) -> list[IamDecision]:
        """The decision on every request (one round trip). A context key the evaluator does not
        apply to the action, or a policy it rejects, raises `EvaluatorError`: a check that
        silently drops a condition proves nothing."""
        batch = list(requests)
        if not batch:
            return []
        line = json.dumps(
            {
                "policies": policies,
                "requests": [
                    {
                        "id": str(index),
                        "principal": r.principal,
                        "action": r.action,
                        "resource": r.resource,
                        "accountId": r.account,
                        "context": dict(r.context),
                        "identityPolicies": list(r.identity_policies),
                        "resourcePolicy": r.resource_policy,
                    }
                    for index, r in enumerate(batch)
                ],
            }
        )
        stdin, stdout = self._process.stdin, self._process.stdout
        assert stdin is not None and stdout is not None
        try:
            stdin.write(line + "\n")
            stdin.flush()
            answer_line = stdout.readline()
        except BrokenPipeError:
            answer_line = ""
        if not answer_line:
            stderr = self._process.stderr.read() if self._process.stderr else ""
            raise EvaluatorError(f"the evaluator stopped: {stderr.strip()}")
        answer = json.loads(answer_line)
        if "error" in answer:
            raise EvaluatorError(answer["error"])
        decisions = []
        for result in answer["results"]:
            request = batch[int(result["id"])]
            if result["decision"] == "Error":
                raise EvaluatorError(f"{request.describe()}: {result['explanation']}")
            if result.get("ignoredContextKeys"):
                raise EvaluatorError(
                    f"{request.describe()}: the evaluator ignored context keys "
                    f"{result['ignoredContextKeys']} (not keys of {request.action})"
                )
            decisions.append(
                IamDecision(request, result["decision"], result.get("explanation", ""))
            )
        self.evaluated.extend(decisions)
        return decisions


def denied(decisions: Iterable[IamDecision]) -> list[IamDecision]:
    return [d for d in decisions if not d.allowed]


def assert_all_allowed(decisions: Sequence[IamDecision]) -> None:
    """Fail with the evaluator's explanation for every request the policies deny."""
    refused = denied(decisions)
    assert decisions, "no request was evaluated"
    assert not refused, "the policies deny:\n" + "\n".join(d.report() for d in refused)


def assert_all_denied(decisions: Sequence[IamDecision]) -> None:
    """Fail naming every request the policies allow."""
    allowed = [d for d in decisions if d.allowed]
    assert decisions, "no request was evaluated"
    assert not allowed, "the policies allow:\n" + "\n".join(d.report() for d in allowed)
