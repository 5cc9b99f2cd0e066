"""A deployed processor for preflight's tests: its resources in a moto server (SES receipt rules
and identities, S3, SQS, Lambda, IAM, DynamoDB, CloudWatch), reached by real botocore clients;
the calls moto does not implement (GetAccountSendingEnabled, identity policies,
SimulatePrincipalPolicy) answered by botocore's Stubber with the service's real response shapes.

``Account`` builds one account's state with every knob a check looks at; ``healthy()`` passes
every check, and each test turns one knob to break one thing."""

from __future__ import annotations

import io
import json
import urllib.request
import zipfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from bounce_runtime.operations.dns_mx import ANSWERED, MxLookup
from support.aws_env import moto_server as local_moto_server

REGION = "eu-west-1"
ACCOUNT = "123456789012"  # moto's default account
BUCKET = "preflight-mail"
RULE_SET = "Bounces-RuleSet"
RULE = "Bounces-Rule"
FUNCTION = "Bounces-Function"
TABLE = "SendBudget"
BUDGET_ID = "ses-send-bounce"
INBOUND = f"inbound-smtp.{REGION}.amazonaws.com"
NOW = datetime.now(UTC).replace(microsecond=0)
# Where a service's IAM prefix differs from its signing name.
IAM_PREFIXES = {"monitoring": "cloudwatch"}
PRODUCTION_QUOTA = {"Max24HourSend": 50000.0, "MaxSendRate": 14.0, "SentLast24Hours": 3.0}


@dataclass(frozen=True)
class Account:
    """The state of one account and region that the checks read."""

    recipients: Sequence[str] = ("old.example.com", "retired@example.org")
    bounce_sender: str = "bounces@example.com"
    bounce_sender_arn: str = ""
    verified: Sequence[str] = ("example.com", "example.org")
    active_rule_set: str | None = RULE_SET
    rule_enabled: bool = True
    rule_recipients: Sequence[str] | None = None  # None: the processor's recipients
    earlier_stop_recipients: Sequence[str] = ("someone@elsewhere.example.net",)
    mx: Mapping[str, MxLookup] = field(default_factory=dict)  # default: SES's endpoint
    receives_mail: bool = True
    sending_enabled: bool = True
    quota: Mapping[str, float] = field(
        default_factory=lambda: {
            "Max24HourSend": 50000.0,
            "MaxSendRate": 14.0,
            "SentLast24Hours": 3.0,
        }
    )
    identity_policies: Mapping[str, str] | None = None  # None: only the owner can read them
    simulation: Sequence[str] = ("allowed", "allowed")  # GetItem, UpdateItem; () = denied call
    budget_table_exists: bool = True
    dead_letters: int = 0
    oldest_age_s: float | None = 30.0  # main queue's ApproximateAgeOfOldestMessage
    function_errors: Sequence[float] = ()


def healthy(**changes: Any) -> Account:
    return replace(Account(), **changes)


@pytest.fixture(scope="module")
def moto_server() -> Any:
    with local_moto_server() as endpoint:
        yield endpoint


@pytest.fixture
def world(moto_server: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[Account], World]:
    """``world(account)``: moto reset and filled with ``account``; its clients."""
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
        "AWS_ENDPOINT_URL": moto_server,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_CLOUDFORMATION", raising=False)

    def make(account: Account) -> World:
        urllib.request.urlopen(
            urllib.request.Request(f"{moto_server}/moto-api/reset", method="POST"), timeout=10
        ).read()
        return World(account, _session())

    return make


_SESSION: Any = None


def _session() -> Any:
    global _SESSION  # one session: each new one loads the service models again
    if _SESSION is None:
        _SESSION = boto3.session.Session(region_name=REGION)
    return _SESSION


class _Mixed:
    """A moto-backed client whose ``stubbed`` operations go to a Stubber-activated client."""

    def __init__(self, real: Any, stubbed: Any, operations: set[str]) -> None:
        self._real, self._stubbed, self._operations = real, stubbed, operations

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stubbed if name in self._operations else self._real, name)


class World:
    """One account built in moto, with the Stubber answers for the rest."""

    def __init__(self, account: Account, session: Any) -> None:
        self.account = account
        self.session = session
        self.real = {s: session.client(s) for s in ("ses", "s3", "sqs", "lambda", "iam")}
        self.real.update({s: session.client(s) for s in ("dynamodb", "cloudwatch")})
        self.stubs: dict[str, Stubber] = {}
        self.calls: list[str] = []
        self._build()
        self.actions: list[str] = []  # IAM actions of the calls made through ``clients``
        for client in self.real.values():
            self._record(client)

    # The state ---------------------------------------------------------------------------------

    def _build(self) -> None:
        a, ses = self.account, self.real["ses"]
        s3 = self.real["s3"]
        s3.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        for identity in a.verified:
            if "@" in identity:
                ses.verify_email_identity(EmailAddress=identity)
            else:
                ses.verify_domain_identity(Domain=identity)
        ses.create_receipt_rule_set(RuleSetName=RULE_SET)
        ses.create_receipt_rule(
            RuleSetName=RULE_SET,
            Rule={
                "Name": "EarlierStop",
                "Enabled": True,
                "Recipients": list(a.earlier_stop_recipients),
                "Actions": [{"StopAction": {"Scope": "RuleSet"}}],
            },
        )
        ses.create_receipt_rule(
            RuleSetName=RULE_SET,
            After="EarlierStop",
            Rule={
                "Name": RULE,
                "Enabled": a.rule_enabled,
                "Recipients": list(
                    a.recipients if a.rule_recipients is None else a.rule_recipients
                ),
                "Actions": [{"S3Action": {"BucketName": BUCKET, "ObjectKeyPrefix": "inbound/"}}],
            },
        )
        ses.create_receipt_rule_set(RuleSetName="SomeoneElses")
        if a.active_rule_set is not None:
            ses.set_active_receipt_rule_set(RuleSetName=a.active_rule_set)
        sqs = self.real["sqs"]
        self.dead_letter_queue_url = sqs.create_queue(QueueName="Bounces-DLQ")["QueueUrl"]
        self.queue_url = sqs.create_queue(QueueName="Bounces-Queue")["QueueUrl"]
        for number in range(a.dead_letters):
            sqs.send_message(QueueUrl=self.dead_letter_queue_url, MessageBody=f"letter {number}")
        if a.budget_table_exists:
            self.real["dynamodb"].create_table(
                TableName=TABLE,
                KeySchema=[{"AttributeName": "budget_id", "KeyType": "HASH"}],
                AttributeDefinitions=[{"AttributeName": "budget_id", "AttributeType": "S"}],
                BillingMode="PAY_PER_REQUEST",
            )
        role = self.real["iam"].create_role(RoleName="FunctionRole", AssumeRolePolicyDocument="{}")
        self.role_arn = role["Role"]["Arn"]
        self.real["lambda"].create_function(
            FunctionName=FUNCTION,
            Runtime="python3.12",
            Role=self.role_arn,
            Handler="bounce_runtime.handler.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": self.environment()},
        )
        self._metrics()

    def environment(self) -> dict[str, str]:
        a = self.account
        variables = {
            "BOUNCE_SENDER": a.bounce_sender,
            "OWNED_RECIPIENTS": json.dumps(list(a.recipients)),
            "SEND_BUDGET_TABLE": TABLE,
            "SEND_BUDGET_ID": BUDGET_ID,
            "DEAD_LETTER_QUEUE_URL": self.dead_letter_queue_url,
        }
        if a.bounce_sender_arn:
            variables["BOUNCE_SENDER_ARN"] = a.bounce_sender_arn
        return variables

    def _metrics(self) -> None:
        cloudwatch, a = self.real["cloudwatch"], self.account
        data = []
        if a.oldest_age_s is not None:
            data.append(
                (
                    "AWS/SQS",
                    "ApproximateAgeOfOldestMessage",
                    "QueueName",
                    "Bounces-Queue",
                    a.oldest_age_s,
                    NOW - timedelta(minutes=5),
                )
            )
        for hours_ago, errors in enumerate(a.function_errors, start=1):
            data.append(
                (
                    "AWS/Lambda",
                    "Errors",
                    "FunctionName",
                    FUNCTION,
                    errors,
                    NOW - timedelta(hours=hours_ago),
                )
            )
        for namespace, metric, dimension, value_of, value, timestamp in data:
            cloudwatch.put_metric_data(
                Namespace=namespace,
                MetricData=[
                    {
                        "MetricName": metric,
                        "Dimensions": [{"Name": dimension, "Value": value_of}],
                        "Value": value,
                        "Timestamp": timestamp,
                    }
                ],
            )

    # The clients -------------------------------------------------------------------------------

    def clients(self, service: str) -> Any:
        """``clients(service)`` as preflight takes it; records every operation called."""
        self.calls.append(service)
        if service == "ses":
            return _Mixed(self.real["ses"], self._record(self._ses_stub()), self._ses_stubbed())
        if service == "iam":
            stubbed = self._record(self._iam_stub())
            return _Mixed(self.real["iam"], stubbed, {"simulate_principal_policy"})
        if service == "cloudformation":
            return self._record(self.stubs["cloudformation"].client)  # set by the stack tests
        return self.real[service]

    def _record(self, client: Any) -> Any:
        """Record each call's IAM action (``before-parameter-build`` runs with Stubber too)."""
        if getattr(client, "_preflight_recorded", False):
            return client
        client._preflight_recorded = True
        prefix = IAM_PREFIXES.get(client.meta.service_model.signing_name)
        prefix = prefix or client.meta.service_model.signing_name

        def record(model: Any, **_: Any) -> None:
            self.actions.append(f"{prefix}:{model.name}")

        client.meta.events.register("before-parameter-build.*.*", record)
        return client

    def _ses_stubbed(self) -> set[str]:
        operations = {"get_account_sending_enabled", "list_identity_policies"}
        operations |= {"get_identity_policies", "get_send_quota"}
        if not self.account.receives_mail:
            operations |= {"describe_active_receipt_rule_set"}
        return operations

    def _ses_stub(self) -> Any:
        a = self.account
        client = self.session.client("ses")
        stub = Stubber(client)
        if not a.receives_mail:
            stub.add_client_error(
                "describe_active_receipt_rule_set",
                service_error_code="InvalidAction",
                service_message="Unavailable Operation",
                http_status_code=400,
            )
        foreign = [arn for arn in [a.bounce_sender_arn] if arn and arn.split(":")[4] != ACCOUNT]
        for arn in foreign:
            if a.identity_policies is None:
                stub.add_client_error(
                    "list_identity_policies",
                    service_error_code="AccessDenied",
                    service_message=f"not the owner of {arn}",
                    expected_params={"Identity": arn},
                )
            else:
                names = sorted(a.identity_policies)
                stub.add_response(
                    "list_identity_policies", {"PolicyNames": names}, {"Identity": arn}
                )
                stub.add_response(
                    "get_identity_policies",
                    {"Policies": dict(a.identity_policies)},
                    {"Identity": arn, "PolicyNames": names},
                )
        stub.add_response("get_account_sending_enabled", {"Enabled": a.sending_enabled}, {})
        stub.add_response("get_send_quota", dict(a.quota), {})
        stub.activate()
        self.stubs["ses"] = stub
        return client

    def _iam_stub(self) -> Any:
        client = self.session.client("iam")
        stub = Stubber(client)
        table_arn = f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{TABLE}"
        expected = {
            "PolicySourceArn": self.role_arn,
            "ActionNames": ["dynamodb:GetItem", "dynamodb:UpdateItem"],
            "ResourceArns": [table_arn],
            "ContextEntries": [
                {
                    "ContextKeyName": "dynamodb:LeadingKeys",
                    "ContextKeyValues": [BUDGET_ID],
                    "ContextKeyType": "stringList",
                }
            ],
        }
        if self.account.simulation:
            results = [
                {"EvalActionName": action, "EvalResourceName": table_arn, "EvalDecision": decision}
                for action, decision in zip(
                    expected["ActionNames"], self.account.simulation, strict=True
                )
            ]
            stub.add_response("simulate_principal_policy", {"EvaluationResults": results}, expected)
        else:
            stub.add_client_error(
                "simulate_principal_policy",
                service_error_code="AccessDenied",
                service_message="not authorized to perform iam:SimulatePrincipalPolicy",
                http_status_code=403,
            )
        stub.activate()
        self.stubs["iam"] = stub
        return client

    def resolve_mx(self, domain: str) -> MxLookup:
        return self.account.mx.get(domain, MxLookup(ANSWERED, (INBOUND,)))


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("bounce_runtime/handler.py", "def handler(event, context): pass\n")
    return buffer.getvalue()


def by_names(world: World, **overrides: Any) -> Any:
    """The parsed arguments of ``preflight`` naming the processor's resources."""
    import argparse

    values = {
        "stack": None,
        "processor": None,
        "function": FUNCTION,
        "rule_set": RULE_SET,
        "rule": RULE,
        "queue_url": world.queue_url,
        "dead_letter_queue_url": world.dead_letter_queue_url,
        "profile": None,
        "region": REGION,
        "output": "text",
        "strict": False,
    }
    values.update(overrides)
    return argparse.Namespace(**values)


def run(world: World, **overrides: Any) -> dict[str, Any]:
    """Preflight against ``world``: each check's JSON form by name."""
    from bounce_runtime.operations.preflight import preflight

    _, checks = preflight(
        by_names(world, **overrides),
        world.clients,
        REGION,
        resolve_mx=world.resolve_mx,
        now=NOW,
    )
    return {check.name: check.to_json() for check in checks}
