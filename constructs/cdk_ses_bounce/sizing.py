"""How many records one invocation can bounce at the send budget's pace: the synth warning when a
full batch cannot fit in the function's timeout."""

from __future__ import annotations

import aws_cdk as cdk

from bounce_runtime import contract
from bounce_runtime.core.policy import BouncePolicy
from cdk_ses_bounce.budget import ISendBounceBudget
from cdk_ses_bounce.props import Props


def record_time_margin_seconds(policy: BouncePolicy) -> float:
    """The runtime's per-record time margin with this policy."""
    return contract.record_time_margin_seconds(
        needs_object_size=policy.needs_object_size, reads_headers=policy.guards.reads_headers
    )


def batch_outlasts_timeout_warning(
    props: Props, policy: BouncePolicy, budget: ISendBounceBudget
) -> str | None:
    """Why a full batch of bounces cannot be sent within one invocation, or None.

    With a backlog, the processor's `max_concurrency` instances take the budget's slots in turn,
    so one instance sends at about `budget_rate / max_concurrency` (less when other processors
    share the budget)."""
    budget_rate = budget.rate_per_second
    instance_rate = budget_rate / props.max_concurrency
    sending_seconds = props.batch_size / instance_rate
    margin = record_time_margin_seconds(policy)
    timeout_seconds = props.function_timeout.to_seconds()
    if cdk.Token.is_unresolved(timeout_seconds) or sending_seconds + margin <= timeout_seconds:
        return None
    return (
        f"A batch of {props.batch_size} bounces needs at least {sending_seconds:g} s at "
        f"{instance_rate:g} SendBounce calls/s per instance (the budget's {budget_rate:g}/s "
        f"shared by max_concurrency {props.max_concurrency} instances), plus the runtime's "
        f"{margin:g} s margin: more than function_timeout {timeout_seconds:g} s. The rest of "
        f"each full batch returns to the queue and uses up receives (max_receive_count "
        f"{props.max_receive_count}); lower batch_size or raise function_timeout"
    )
