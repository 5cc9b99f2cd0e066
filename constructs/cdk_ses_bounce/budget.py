"""SendBounceBudget: the one SendBounce budget of an account and region, shared by every processor.

SES allows SendBounce once per second per account and region, with no burst. The budget holds
that schedule in one DynamoDB item; the runtime takes a slot from it (a conditional UpdateItem)
before every SendBounce call, in every container of every processor that uses the budget. Create
it once per account and region and import it elsewhere with ``from_budget_attributes``.
"""

from __future__ import annotations

import math
import re
import weakref

import aws_cdk as cdk
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from constructs import Construct, IConstruct

from bounce_runtime.contract import (
    DEFAULT_SEND_BUDGET_ID,
    DEFAULT_SEND_RATE_PER_SECOND,
    ENV_SEND_BUDGET_ID,
    ENV_SEND_BUDGET_TABLE,
    ENV_SEND_RATE_PER_SECOND,
    MAX_SEND_RATE_PER_SECOND,
    SEND_BUDGET_ID_FORM,
    SEND_BUDGET_ID_PATTERN,
    SEND_BUDGET_KEY_ATTRIBUTE,
)
from cdk_ses_bounce.nag import acknowledge

# App root -> "account/region" -> user construct path -> identity of the budget it uses.
_BUDGETS_IN_USE: weakref.WeakKeyDictionary[IConstruct, dict[str, dict[str, str]]] = (
    weakref.WeakKeyDictionary()
)
# App root -> budget identity -> user construct path -> that user's max_concurrency: every
# container that takes slots from the budget in this app (the sizing rule's default count).
_CONTAINERS_IN_USE: weakref.WeakKeyDictionary[IConstruct, dict[str, dict[str, int]]] = (
    weakref.WeakKeyDictionary()
)
# Budget -> the processor that last noted its use (note_budget_use): the one being constructed,
# whose warnings (sizing) are added next.
_LAST_USER: weakref.WeakKeyDictionary[IConstruct, IConstruct] = weakref.WeakKeyDictionary()
# Actions a slot taker needs: the conditional write, and the read after a lost race.
TAKE_SLOT_ACTIONS = ("dynamodb:UpdateItem", "dynamodb:GetItem")


def validate_expected_containers(expected_containers: int | None) -> None:
    """``ValueError`` naming the value unless it is None or a whole number >= 1."""
    if expected_containers is None:
        return
    if (
        isinstance(expected_containers, bool)
        or not isinstance(expected_containers, int)
        or expected_containers < 1
    ):
        raise ValueError(
            f"expected_containers is {expected_containers!r}: a whole number >= 1 is required "
            "(Lambda containers of every processor, in every app, that take slots from this "
            "budget at once: the sum of their max_concurrency), or None to count the "
            "processors of this app"
        )


def validate_rate_per_second(rate_per_second: float) -> None:
    """``ValueError`` naming the value unless 0 < rate <= MAX_SEND_RATE_PER_SECOND."""
    if not (
        isinstance(rate_per_second, int | float)
        and math.isfinite(rate_per_second)
        and 0 < rate_per_second <= MAX_SEND_RATE_PER_SECOND
    ):
        raise ValueError(
            f"rate_per_second is {rate_per_second!r}: a number of SendBounce calls per second "
            f"> 0 and <= {MAX_SEND_RATE_PER_SECOND:g} is required (SES allows 1 per account and "
            "region)"
        )


def validate_budget_id(budget_id: str) -> None:
    """``ValueError`` naming the value unless it is a budget id (unresolved tokens pass)."""
    if cdk.Token.is_unresolved(budget_id):
        return
    if not re.fullmatch(SEND_BUDGET_ID_PATTERN, budget_id, re.ASCII):
        raise ValueError(f"budget_id is {budget_id!r}: {SEND_BUDGET_ID_FORM} is required")


class ISendBounceBudget(Construct):
    """A SendBounce budget, created here or imported: its table, item key and rate."""

    _table: dynamodb.ITable
    _budget_id: str
    _rate_per_second: float
    _expected_containers: int | None = None

    @property
    def table(self) -> dynamodb.ITable:
        """The DynamoDB table holding the budget's item."""
        return self._table

    @property
    def budget_id(self) -> str:
        """The partition key value of the budget's item."""
        return self._budget_id

    @property
    def rate_per_second(self) -> float:
        """The SendBounce calls per second every taker of this budget paces to."""
        return self._rate_per_second

    @property
    def expected_containers(self) -> int:
        """How many Lambda containers take slots from this budget at once: the
        ``expected_containers`` given to the budget, else the sum of ``max_concurrency`` of the
        processors of this app that use it (known once every processor is constructed; other
        apps sharing the budget are not seen: give ``expected_containers`` then). At least 1.
        Each container gets one slot every ``expected_containers`` spacings."""
        if self._expected_containers is not None:
            return self._expected_containers
        return max(1, sum(self.containers_in_app().values()))

    @property
    def expected_containers_given(self) -> bool:
        """Whether ``expected_containers`` was given (else counted from this app)."""
        return self._expected_containers is not None

    def containers_in_app(self) -> dict[str, int]:
        """The processors of this app that use this budget (by construct path; also those
        using another construct for the same table and item), each with its max_concurrency."""
        in_app = _CONTAINERS_IN_USE.get(self.node.root, {})
        return dict(in_app.get(_budget_identity(self), {}))

    def grant_take_slots(self, grantee: iam.IGrantable) -> iam.Grant:
        """Allow ``grantee`` to take slots: UpdateItem and GetItem on this budget's item only
        (``dynamodb:LeadingKeys`` must be exactly the budget id)."""
        return iam.Grant.add_to_principal(
            grantee=grantee,
            actions=list(TAKE_SLOT_ACTIONS),
            resource_arns=[self.table.table_arn],
            conditions={"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": [self.budget_id]}},
        )

    def environment(self) -> dict[str, str]:
        """The runtime's environment variables for this budget (names from the contract)."""
        return {
            ENV_SEND_BUDGET_TABLE: self.table.table_name,
            ENV_SEND_BUDGET_ID: self.budget_id,
            ENV_SEND_RATE_PER_SECOND: repr(float(self.rate_per_second)),
        }


class SendBounceBudget(ISendBounceBudget):
    """The SendBounce budget of one account and region: a DynamoDB table with one item.

    Create one per account and region (in a shared stack) and import it into the other stacks
    and apps with :meth:`from_budget_attributes`; every processor that uses it paces to
    ``rate_per_second`` together, across all their instances and containers.

    :param rate_per_second: SendBounce calls per second for the whole account and region.
        Default 1.0 (the SES limit); at most 1,000.
    :param budget_id: the item's partition key value. Default ``"ses-send-bounce"``.
    :param removal_policy: what happens to the table when it leaves the stack. Default DESTROY:
        the item is a single timestamp, worthless once past and rebuilt by the next slot taken.
    :param expected_containers: how many Lambda containers take slots at once, across every
        processor and app that shares the budget (the sum of their ``max_concurrency``). The
        ``batchOutlastsTimeout`` synth warning sizes each processor's batch by it. Default: the
        sum of ``max_concurrency`` of the processors of this app that use the budget.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        rate_per_second: float = DEFAULT_SEND_RATE_PER_SECOND,
        budget_id: str | None = None,
        removal_policy: cdk.RemovalPolicy = cdk.RemovalPolicy.DESTROY,
        expected_containers: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        budget_id = DEFAULT_SEND_BUDGET_ID if budget_id is None else budget_id
        validate_rate_per_second(rate_per_second)
        validate_budget_id(budget_id)
        validate_expected_containers(expected_containers)
        self._expected_containers = expected_containers
        self._rate_per_second = float(rate_per_second)
        self._budget_id = budget_id
        self._table = dynamodb.Table(
            self,
            "Table",
            partition_key=dynamodb.Attribute(
                name=SEND_BUDGET_KEY_ATTRIBUTE, type=dynamodb.AttributeType.STRING
            ),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=False
            ),
            removal_policy=removal_policy,
        )
        acknowledge(
            self._table,
            "AwsSolutions-DDB3",
            "The table holds one item: the next free SendBounce slot, a timestamp rewritten at "
            "every send and worthless once past. A restore could only bring back an older, past "
            "time, which the runtime treats as no schedule; there is nothing to recover.",
        )

    @staticmethod
    def from_budget_attributes(
        scope: Construct,
        construct_id: str,
        *,
        budget_id: str = DEFAULT_SEND_BUDGET_ID,
        rate_per_second: float = DEFAULT_SEND_RATE_PER_SECOND,
        table_name: str | None = None,
        table_arn: str | None = None,
        expected_containers: int | None = None,
    ) -> ISendBounceBudget:
        """A budget created elsewhere (another stack or app), by table name or ARN (one of
        them). ``budget_id`` and ``rate_per_second`` must be those of the budget itself: every
        taker should pace to the same rate (a taker with a faster one adopts the slower rate
        stored on the budget's item; see docs/design.md). ``expected_containers``: as on
        ``SendBounceBudget``, the containers of every app sharing the budget; default: this
        app's processors only."""
        return _ImportedSendBounceBudget(
            scope,
            construct_id,
            budget_id=budget_id,
            rate_per_second=rate_per_second,
            table_name=table_name,
            table_arn=table_arn,
            expected_containers=expected_containers,
        )


class _ImportedSendBounceBudget(ISendBounceBudget):
    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        budget_id: str,
        rate_per_second: float,
        table_name: str | None,
        table_arn: str | None,
        expected_containers: int | None,
    ) -> None:
        super().__init__(scope, construct_id)
        validate_expected_containers(expected_containers)
        self._expected_containers = expected_containers
        if (table_name is None) == (table_arn is None):
            raise ValueError(
                f"table_name is {table_name!r} and table_arn is {table_arn!r}: exactly one of "
                "them is required to import a send budget"
            )
        validate_rate_per_second(rate_per_second)
        validate_budget_id(budget_id)
        if table_arn is not None:
            _require_same_account_and_region(self, table_arn)
            self._table = dynamodb.Table.from_table_arn(self, "Table", table_arn)
        else:
            assert table_name is not None
            self._table = dynamodb.Table.from_table_name(self, "Table", table_name)
        self._budget_id = budget_id
        self._rate_per_second = float(rate_per_second)


def _require_same_account_and_region(scope: Construct, table_arn: str) -> None:
    """A budget paces one account and region: its table must be in the stack's (when known)."""
    if cdk.Token.is_unresolved(table_arn):
        return
    parts = table_arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or parts[2] != "dynamodb":
        raise ValueError(
            f"table_arn is {table_arn!r}: a DynamoDB table ARN "
            "arn:<partition>:dynamodb:<region>:<account>:table/<name> is required"
        )
    stack = cdk.Stack.of(scope)
    for what, expected, actual in (
        ("region", stack.region, parts[3]),
        ("account", stack.account, parts[4]),
    ):
        if not cdk.Token.is_unresolved(expected) and expected != actual:
            raise ValueError(
                f"table_arn is {table_arn!r}: its {what} {actual!r} is not the stack's "
                f"{expected!r}; SES counts SendBounce per account and region, so a budget "
                "serves only its own"
            )


def last_user(budget: ISendBounceBudget) -> IConstruct | None:
    """The processor that last noted its use of ``budget`` (``note_budget_use``), if any."""
    return _LAST_USER.get(budget)


def note_containers(user: IConstruct, budget: ISendBounceBudget, max_concurrency: int) -> None:
    """Record that ``user`` (a processor) runs up to ``max_concurrency`` containers taking
    slots from ``budget``: they count in ``budget.expected_containers`` unless it was given."""
    in_app = _CONTAINERS_IN_USE.setdefault(user.node.root, {})
    in_app.setdefault(_budget_identity(budget), {})[user.node.path] = max_concurrency


def note_budget_use(user: IConstruct, budget: ISendBounceBudget) -> None:
    """Record that ``user`` (a processor) sends through ``budget``; warn at synth when another
    user in the same app, account and region sends through a different budget (their rates add
    up past the SES limit)."""
    _LAST_USER[budget] = user
    stack = cdk.Stack.of(user)
    where = f"{stack.account}/{stack.region}"
    identity = _budget_identity(budget)
    others = _BUDGETS_IN_USE.setdefault(user.node.root, {}).setdefault(where, {})
    different = sorted({used for used in others.values() if used != identity})
    others.setdefault(user.node.path, identity)
    if different:
        cdk.Annotations.of(user).add_warning_v2(
            "cdk-ses-bounce:budgetsSplit",
            f"{user.node.path} uses send budget {identity}, but other processors in account/"
            f"region {where} use {', '.join(different)}: SES allows one SendBounce per second "
            "per account and region, so share one SendBounceBudget (import it with "
            "SendBounceBudget.from_budget_attributes) or they will throttle each other",
        )


def _budget_identity(budget: ISendBounceBudget) -> str:
    """The same string for every construct that stands for the same table and item."""
    stack = cdk.Stack.of(budget)
    table = stack.resolve(budget.table.table_name)
    if not isinstance(table, str):  # a table created in this app: its construct path
        table = budget.table.node.path
    return f"{table}#{budget.budget_id}"
