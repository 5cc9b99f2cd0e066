"""How many records one invocation can bounce at the send budget's pace: the synth warning when a
full batch cannot fit in the function's timeout.

Every container of every processor sharing a budget takes its slots in turn, so with N containers
one container gets a slot every N spacings (spacing: 1/rate + 20 ms), and a full batch of B
needs ``B x N x spacing`` seconds (``contract.batch_sending_seconds``) plus the runtime's
per-record margin (39 s, 50 s with a size rule: ``contract.record_time_margin_seconds``). N is
the budget's ``expected_containers``: given on the budget, else the sum of ``max_concurrency`` of
the processors of the app that use it, known only once every processor is constructed; so a batch
that fits at construction is checked again at synth (an aspect), when they all are.
"""

from __future__ import annotations

import aws_cdk as cdk
import jsii
from constructs import IConstruct

from bounce_runtime import contract
from bounce_runtime.core.policy import BouncePolicy
from cdk_ses_bounce.budget import ISendBounceBudget, last_user, note_containers
from cdk_ses_bounce.props import Props

WARNING_ID = "cdk-ses-bounce:batchOutlastsTimeout"


def record_time_margin_seconds(policy: BouncePolicy) -> float:
    """The runtime's per-record time margin with this policy."""
    return contract.record_time_margin_seconds(
        needs_object_size=policy.needs_object_size, reads_headers=policy.guards.reads_headers
    )


def batch_outlasts_timeout_warning(
    props: Props, policy: BouncePolicy, budget: ISendBounceBudget
) -> str | None:
    """Why a full batch of bounces cannot be sent within one invocation, or None.

    Counts the processor being constructed (the budget's last user) among the budget's
    containers. A batch that does not fit now never will (the count only grows). One that fits
    now while the count may still grow (``expected_containers`` not given on the budget) is
    checked again at synth with every processor of the app counted, and the same warning
    (``cdk-ses-bounce:batchOutlastsTimeout``) is added to the processor then."""
    user = last_user(budget)
    if user is not None:
        note_containers(user, budget, props.max_concurrency)
    message = _warning(props, policy, budget)
    if message is None and user is not None and not budget.expected_containers_given:
        cdk.Aspects.of(user).add(_SizingAtSynth(user, props, policy, budget))
    return message


def _warning(props: Props, policy: BouncePolicy, budget: ISendBounceBudget) -> str | None:
    containers = budget.expected_containers
    rate = budget.rate_per_second
    timeout_seconds = props.function_timeout.to_seconds()
    if cdk.Token.is_unresolved(timeout_seconds):
        return None
    margin = record_time_margin_seconds(policy)
    sending_seconds = contract.batch_sending_seconds(
        batch_size=props.batch_size, containers=containers, rate_per_second=rate
    )
    if sending_seconds + margin <= timeout_seconds:
        return None
    spacing = contract.send_budget_spacing_seconds(rate)
    fitting = contract.largest_fitting_batch(
        containers=containers,
        rate_per_second=rate,
        record_margin_s=margin,
        timeout_s=timeout_seconds,
    )
    if budget.expected_containers_given:
        counted = "the budget's expected_containers"
    else:
        users = budget.containers_in_app()
        counted = "max_concurrency of " + ", ".join(
            f"{path} ({count})" for path, count in sorted(users.items())
        )
    remedy = (
        f"lower batch_size to {fitting} or raise function_timeout"
        if fitting >= 1
        else f"raise function_timeout to at least {containers * spacing + margin:g} s"
    )
    return (
        f"A batch of {props.batch_size} bounces needs at least {sending_seconds:g} s: "
        f"{containers} containers share the send budget ({counted}), so each gets one "
        f"SendBounce slot every {containers * spacing:g} s ({containers} x (1/{rate:g} + "
        f"{contract.SEND_BUDGET_MARGIN_S:g}) s); with the runtime's {margin:g} s margin that is "
        f"more than function_timeout {timeout_seconds:g} s. The rest of each full batch returns "
        f"to the queue unsent and uses up receives (max_receive_count "
        f"{props.max_receive_count}); {remedy}"
    )


@jsii.implements(cdk.IAspect)
class _SizingAtSynth:
    """The sizing check of one processor, at synth, when every user of its budget is known."""

    def __init__(
        self, user: IConstruct, props: Props, policy: BouncePolicy, budget: ISendBounceBudget
    ) -> None:
        self._user = user
        self._props = props
        self._policy = policy
        self._budget = budget
        self._done = False

    def visit(self, node: IConstruct) -> None:
        if node is not self._user or self._done:
            return
        self._done = True
        if (message := _warning(self._props, self._policy, self._budget)) is not None:
            cdk.Annotations.of(self._user).add_warning_v2(WARNING_ID, message)
