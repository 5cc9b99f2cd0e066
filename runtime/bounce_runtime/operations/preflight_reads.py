"""The AWS reads of ``preflight``: find the processor, read what each check needs, run the checks.

Every call is read-only and listed in ``permissions.COMMAND_PERMISSIONS["preflight"]``. A failed
call becomes a ``Read`` with its error (the check says ``unknown``), except missing credentials,
which stop the command. Clients come from ``clients(service)`` (boto3 clients, or stubs).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import Any, Final

from bounce_runtime.contract import (
    DEAD_LETTER_QUEUE_CONSTRUCT_ID,
    ENV_BOUNCE_SENDER,
    ENV_BOUNCE_SENDER_ARN,
    ENV_DEAD_LETTER_QUEUE_URL,
    ENV_OWNED_RECIPIENTS,
    ENV_RECIPIENT_IDENTITY_ARNS,
    ENV_SEND_BUDGET_ID,
    ENV_SEND_BUDGET_TABLE,
    QUEUE_CONSTRUCT_ID,
    SEND_BUDGET_KEY_ATTRIBUTE,
)
from bounce_runtime.errors import OperationsError
from bounce_runtime.operations import preflight_account_checks as account
from bounce_runtime.operations import preflight_checks as checks
from bounce_runtime.operations.dns_mx import MxResolver
from bounce_runtime.operations.preflight_checks import Check, Processor, Read

PATH_METADATA_KEY: Final = "aws:cdk:path"
# Construct IDs inside a BounceProcessor (a public contract) and their resource types.
FUNCTION_ID: Final = "Function"
RULE_ID: Final = "Rule"
PROCESSOR_PARTS: Final[Mapping[str, str]] = {
    FUNCTION_ID: "AWS::Lambda::Function",
    RULE_ID: "AWS::SES::ReceiptRule",
    QUEUE_CONSTRUCT_ID: "AWS::SQS::Queue",
    DEAD_LETTER_QUEUE_CONSTRUCT_ID: "AWS::SQS::Queue",
}
ERRORS_WINDOW_HOURS: Final = 24
AGE_WINDOW: Final = timedelta(minutes=30)
MAX_IDENTITIES_PER_CALL: Final = 100  # GetIdentityVerificationAttributes takes at most 100

Clients = Callable[[str], Any]


def read(call: Callable[..., Any], **kwargs: Any) -> Read:
    """Call ``call(**kwargs)``: its answer, or the error as a ``Read`` (never raises, except for
    missing credentials, which no later call can get past)."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        return Read(value=call(**kwargs))
    except NoCredentialsError:
        raise
    except ClientError as error:
        info = error.response.get("Error", {})
        code, message = str(info.get("Code", "")), str(info.get("Message", ""))
        return Read(error=f"{code}: {message}" if message else code or str(error), code=code)
    except BotoCoreError as error:
        return Read(error=_one_line(str(error)), code=type(error).__name__)
    except Exception as error:  # e.g. botocore's ResponseParserError for a garbled answer
        return Read(error=_one_line(f"{type(error).__name__}: {error}"), code=type(error).__name__)


def _one_line(text: str, limit: int = 300) -> str:
    words = " ".join(text.split())
    return words if len(words) <= limit else words[: limit - 3] + "..."


def find_in_stack(cloudformation: Any, *, stack: str, processor: str) -> dict[str, str]:
    """The physical IDs of the processor's function, rule, rule set and queues in ``stack``,
    matched by ``aws:cdk:path`` metadata ``.../<processor>/<construct id>/Resource``."""
    from botocore.exceptions import ClientError

    try:
        body = cloudformation.get_template(StackName=stack).get("TemplateBody")
        if isinstance(body, str):
            body = json.loads(body)
    except ClientError as error:
        raise OperationsError(f"stack {stack!r}: {error}") from None
    except ValueError:
        raise OperationsError(f"the template of stack {stack!r} is not JSON") from None
    resources = body.get("Resources") if isinstance(body, Mapping) else None
    resources = resources if isinstance(resources, Mapping) else {}
    path = processor.strip("/")
    found: dict[str, str] = {}
    for construct_id, resource_type in PROCESSOR_PARTS.items():
        suffix = f"/{path}/{construct_id}/Resource"
        ids = [
            logical_id
            for logical_id, resource in resources.items()
            if isinstance(resource, Mapping)
            and resource.get("Type") == resource_type
            and str((resource.get("Metadata") or {}).get(PATH_METADATA_KEY, "")).endswith(suffix)
        ]
        if len(ids) != 1:
            raise OperationsError(
                f"stack {stack!r} has {len(ids)} {resource_type} at {path}/{construct_id} "
                f"({PATH_METADATA_KEY} metadata): check --processor, or give the names instead"
            )
        found[construct_id] = _physical_id(cloudformation, stack, ids[0])
    rule_set = resources[_only(resources, RULE_ID, path)]["Properties"].get("RuleSetName")
    if isinstance(rule_set, Mapping) and isinstance(rule_set.get("Ref"), str):
        rule_set = _physical_id(cloudformation, stack, rule_set["Ref"])
    if isinstance(rule_set, str):
        found["RuleSet"] = rule_set
    return found


def _only(resources: Mapping[str, Any], construct_id: str, path: str) -> str:
    suffix = f"/{path}/{construct_id}/Resource"
    return next(
        logical_id
        for logical_id, resource in resources.items()
        if str((resource.get("Metadata") or {}).get(PATH_METADATA_KEY, "")).endswith(suffix)
    )


def _physical_id(cloudformation: Any, stack: str, logical_id: str) -> str:
    detail = cloudformation.describe_stack_resource(StackName=stack, LogicalResourceId=logical_id)
    physical = (detail.get("StackResourceDetail") or {}).get("PhysicalResourceId")
    if not isinstance(physical, str) or not physical:
        raise OperationsError(f"stack {stack!r}: resource {logical_id} has no physical ID yet")
    return physical


def _json_env(environment: Mapping[str, str], name: str, default: Any) -> Any:
    try:
        return json.loads(environment.get(name) or "null") or default
    except ValueError:
        return default


def describe_processor(
    clients: Clients,
    *,
    region: str,
    function: str | None,
    rule_set: str | None,
    rule: str | None,
    queue_url: str | None,
    dead_letter_queue_url: str | None,
) -> tuple[Processor, Read | None]:
    """The processor as its function's configuration describes it (and the names given)."""
    if function is None:
        processor = Processor(
            region=region,
            rule_set=rule_set,
            rule=rule,
            queue_url=queue_url,
            dead_letter_queue_url=dead_letter_queue_url,
        )
        return processor, None
    config = read(clients("lambda").get_function_configuration, FunctionName=function)
    if not config.ok:
        return Processor(region=region, rule_set=rule_set, rule=rule, queue_url=queue_url), config
    env = (config.value.get("Environment") or {}).get("Variables") or {}
    arn_parts = str(config.value.get("FunctionArn", "")).split(":")
    recipients = _json_env(env, ENV_OWNED_RECIPIENTS, [])
    processor = Processor(
        region=region,
        account=arn_parts[4] if len(arn_parts) > 4 else None,
        rule_set=rule_set,
        rule=rule,
        recipients=tuple(str(r) for r in recipients if isinstance(r, str)),
        bounce_sender=env.get(ENV_BOUNCE_SENDER) or None,
        bounce_sender_arn=env.get(ENV_BOUNCE_SENDER_ARN) or None,
        recipient_arns={
            str(k): str(v)
            for k, v in _json_env(env, ENV_RECIPIENT_IDENTITY_ARNS, {}).items()
            if isinstance(v, str)
        },
        function_name=str(config.value.get("FunctionName") or function),
        function_role_arn=config.value.get("Role"),
        budget_table=env.get(ENV_SEND_BUDGET_TABLE) or None,
        budget_id=env.get(ENV_SEND_BUDGET_ID) or None,
        queue_url=queue_url,
        dead_letter_queue_url=dead_letter_queue_url or env.get(ENV_DEAD_LETTER_QUEUE_URL) or None,
    )
    return processor, config


def _latest_maximum(cloudwatch: Any, queue_url: str, now: datetime) -> Read:
    answer = read(
        cloudwatch.get_metric_statistics,
        Namespace="AWS/SQS",
        MetricName="ApproximateAgeOfOldestMessage",
        Dimensions=[{"Name": "QueueName", "Value": queue_url.rstrip("/").rsplit("/", 1)[-1]}],
        StartTime=now - AGE_WINDOW,
        EndTime=now,
        Period=300,
        Statistics=["Maximum"],
    )
    if not answer.ok:
        return answer
    points = sorted(answer.value.get("Datapoints") or [], key=lambda p: p.get("Timestamp"))
    return Read(value=float(points[-1]["Maximum"]) if points else None)


def _queue_checks(clients: Clients, processor: Processor, now: datetime) -> list[Check]:
    no_queue = Read(error="the queue URL is not known (give --stack or the queue URLs)")
    sqs, cloudwatch = clients("sqs"), clients("cloudwatch")
    attributes = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    results = []
    for url, check in (
        (processor.dead_letter_queue_url, account.check_dead_letters),
        (processor.queue_url, account.check_queue_age),
    ):
        if url is None:
            results.append(check(no_queue, no_queue))
            continue
        answer = read(sqs.get_queue_attributes, QueueUrl=url, AttributeNames=attributes)
        if answer.ok:
            answer = Read(value=answer.value.get("Attributes") or {})
        results.append(check(answer, _latest_maximum(cloudwatch, url, now)))
    return results


def _budget_check(clients: Clients, processor: Processor) -> Check:
    if processor.budget_table is None or processor.function_role_arn is None:
        return account.check_budget(processor, Read(error="not known"), None)
    partition = processor.function_role_arn.split(":")[1]
    table_arn = (
        f"arn:{partition}:dynamodb:{processor.region}:{processor.account}:table/"
        f"{processor.budget_table}"
    )
    simulation = read(
        clients("iam").simulate_principal_policy,
        PolicySourceArn=processor.function_role_arn,
        ActionNames=["dynamodb:GetItem", "dynamodb:UpdateItem"],
        ResourceArns=[table_arn],
        ContextEntries=[
            {
                "ContextKeyName": "dynamodb:LeadingKeys",
                "ContextKeyValues": [processor.budget_id or ""],
                "ContextKeyType": "stringList",
            }
        ],
    )
    if simulation.ok:
        return account.check_budget(
            processor, Read(value=simulation.value.get("EvaluationResults") or []), None
        )
    item = read(
        clients("dynamodb").get_item,
        TableName=processor.budget_table,
        Key={SEND_BUDGET_KEY_ATTRIBUTE: {"S": processor.budget_id or ""}},
    )
    return account.check_budget(processor, simulation, item)


def run_checks(
    clients: Clients,
    processor: Processor,
    *,
    resolve_mx: MxResolver,
    now: datetime,
    progress: Callable[[str], None] = lambda _: None,
) -> list[Check]:
    """Every check, in the order of the report."""
    ses = clients("ses")
    progress("receiving")
    active = read(ses.describe_active_receipt_rule_set)
    found = [checks.check_receiving_region(processor.region, active)]
    if found[0].status != checks.PROBLEM:
        own = None
        if processor.rule_set is not None and active.ok:
            active_name = (active.value.get("Metadata") or {}).get("Name")
            if active_name != processor.rule_set:
                own = read(ses.describe_receipt_rule_set, RuleSetName=processor.rule_set)
        found += checks.check_rule_set(processor, active, own)
    progress("identities")
    names = account.identity_names(processor)
    statuses = Read(value={})
    for start in range(0, len(names), MAX_IDENTITIES_PER_CALL):
        part = read(
            ses.get_identity_verification_attributes,
            Identities=names[start : start + MAX_IDENTITIES_PER_CALL],
        )
        if not part.ok:
            statuses = part
            break
        statuses.value.update(part.value.get("VerificationAttributes") or {})
    found.append(account.check_bounce_sender(processor, statuses))
    found.append(account.check_recipient_identities(processor, statuses))
    policies = {}
    for arn in [processor.bounce_sender_arn, *processor.recipient_arns.values()]:
        if arn and arn.split(":")[4:5] != [processor.account] and arn not in policies:
            listed = read(ses.list_identity_policies, Identity=arn)
            policies[arn] = (
                read(
                    ses.get_identity_policies, Identity=arn, PolicyNames=listed.value["PolicyNames"]
                )
                if listed.ok
                else listed
            )
            if policies[arn].ok:
                policies[arn] = Read(value=policies[arn].value.get("Policies") or {})
    found.append(account.check_sending_authorization(processor, policies))
    progress("DNS")
    found.append(
        checks.check_mx(processor.region, {d: resolve_mx(d) for d in checks.mx_domains(processor)})
    )
    progress("account")
    enabled = read(ses.get_account_sending_enabled)
    found.append(
        account.check_account_sending(
            Read(value=enabled.value.get("Enabled")) if enabled.ok else enabled,
            read(ses.get_send_quota),
        )
    )
    progress("send budget")
    found.append(_budget_check(clients, processor))
    progress("queues")
    found += _queue_checks(clients, processor, now)
    progress("function")
    found.append(_errors_check(clients, processor, now))
    return found


def _errors_check(clients: Clients, processor: Processor, now: datetime) -> Check:
    if processor.function_name is None:
        return account.check_function_errors(
            Read(error="the function is not known (give --stack or --function)"),
            ERRORS_WINDOW_HOURS,
        )
    answer = read(
        clients("cloudwatch").get_metric_statistics,
        Namespace="AWS/Lambda",
        MetricName="Errors",
        Dimensions=[{"Name": "FunctionName", "Value": processor.function_name}],
        StartTime=now - timedelta(hours=ERRORS_WINDOW_HOURS),
        EndTime=now,
        Period=3600,
        Statistics=["Sum"],
    )
    if answer.ok:
        answer = Read(value=answer.value.get("Datapoints") or [])
    return account.check_function_errors(answer, ERRORS_WINDOW_HOURS)
