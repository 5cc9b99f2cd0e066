"""The evaluation itself can fail: a denied call fails with the evaluator's explanation, and what
it cannot map, resolve or evaluate raises instead of passing."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from iam.helpers import ACCOUNT, REGION, STACK, evaluate, logical_id

from support.cfn_resolver import TemplateResolver, UnresolvableError
from support.iam_calls import Deployment, RecordedCall
from support.iam_simulator import EvaluatorError, IamRequest, IamSimulator, assert_all_allowed

SEND_BOUNCE = RecordedCall(
    "ses",
    "SendBounce",
    {
        "OriginalMessageId": "m-1",
        "BounceSender": "mailer-daemon@example.com",
        "BouncedRecipientInfoList": [{"Recipient": "a@retired.example.com"}],
    },
)


def _function_role(deployment: Deployment) -> str:
    return logical_id(deployment, "AWS::IAM::Role", "FunctionRole")


def test_a_denied_call_fails_with_the_evaluators_explanation(
    template: dict[str, Any], simulator: IamSimulator
) -> None:
    broken = copy.deepcopy(template)
    for resource in broken["Resources"].values():
        if resource["Type"] == "AWS::IAM::Policy":
            document = resource["Properties"]["PolicyDocument"]
            document["Statement"] = [
                s for s in document["Statement"] if s.get("Sid") != "SendBounceAsTheBounceSender"
            ]
    deployment = Deployment(TemplateResolver(broken, ACCOUNT, REGION, STACK))
    role = _function_role(deployment)
    requests = deployment.requests_for(
        SEND_BOUNCE, principal=deployment.role_arn(role), identity_policies=[f"role:{role}"]
    )

    with pytest.raises(AssertionError) as failure:
        assert_all_allowed(evaluate(simulator, deployment, requests))

    message = str(failure.value)
    assert "ImplicitlyDenied: ses.SendBounce from mailer-daemon@example.com" in message
    assert "identity/example.com" in message and "why:" in message


def test_the_same_call_is_allowed_by_the_real_policy(
    deployment: Deployment, simulator: IamSimulator
) -> None:
    role = _function_role(deployment)
    requests = deployment.requests_for(
        SEND_BOUNCE, principal=deployment.role_arn(role), identity_policies=[f"role:{role}"]
    )
    assert [r.resource.rpartition("/")[2] for r in requests] == [
        "mailer-daemon@example.com",
        "example.com",
    ]
    assert_all_allowed(evaluate(simulator, deployment, requests))


def test_a_call_with_no_iam_mapping_raises(deployment: Deployment) -> None:
    with pytest.raises(UnresolvableError, match=r"no IAM mapping for s3\.CopyObject"):
        deployment.requests_for(
            RecordedCall("s3", "CopyObject", {"Bucket": "b", "Key": "k"}),
            principal="arn:aws:iam::111111111111:role/r",
            identity_policies=[],
        )


def test_a_resource_the_template_does_not_have_raises(deployment: Deployment) -> None:
    with pytest.raises(UnresolvableError, match="no AWS::S3::Bucket named 'not-ours'"):
        deployment.requests_for(
            RecordedCall("s3", "GetObject", {"Bucket": "not-ours", "Key": "k"}),
            principal="arn:aws:iam::111111111111:role/r",
            identity_policies=[],
        )


def test_a_context_key_the_evaluator_would_drop_raises(
    deployment: Deployment, simulator: IamSimulator
) -> None:
    request = IamRequest(
        label="typo",
        principal="ses.amazonaws.com",
        action="sns:Publish",
        resource=f"arn:aws:sns:{REGION}:{ACCOUNT}:t",
        account=ACCOUNT,
        context={"aws:SorceAccount": ACCOUNT},
    )
    with pytest.raises(EvaluatorError, match="ignored context keys"):
        evaluate(simulator, deployment, [request])


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"Fn::If": ["C", "a", "b"]}, "unsupported intrinsic function"),
        ({"Fn::GetAtt": ["Nowhere", "Arn"]}, "no resource 'Nowhere'"),
        ({"Ref": "AWS::NotAPseudoParameter"}, "no resource"),
        ({"Fn::ImportValue": "x"}, "unsupported intrinsic function"),
    ],
)
def test_the_resolver_fails_on_what_it_cannot_resolve(
    deployment: Deployment, value: Any, problem: str
) -> None:
    with pytest.raises(UnresolvableError, match=problem):
        deployment.resolver.resolve({"Resource": [value]})


def test_the_resolver_resolves_the_functions_it_knows(deployment: Deployment) -> None:
    resolver = deployment.resolver
    bucket = logical_id(deployment, "AWS::S3::Bucket", "MailBucket")
    name = resolver.physical_name(bucket)
    assert resolver.resolve({"Fn::Sub": "${AWS::Region}/${" + bucket + ".Arn}"}) == (
        f"{REGION}/arn:aws:s3:::{name}"
    )
    assert resolver.resolve({"Fn::Sub": ["x-${V}", {"V": {"Ref": "AWS::AccountId"}}]}) == (
        f"x-{ACCOUNT}"
    )
    split = {"Fn::Split": [":", {"Fn::GetAtt": [bucket, "Arn"]}]}
    assert resolver.resolve({"Fn::Select": [5, split]}) == name


def test_a_simulation_of_anything_but_a_role_is_not_mapped(deployment: Deployment) -> None:
    # Only a role's policy is simulated by preflight; a user's would need its own resource ARN.
    call = RecordedCall(
        "iam",
        "SimulatePrincipalPolicy",
        {"PolicySourceArn": f"arn:aws:iam::{ACCOUNT}:user/FunctionRole", "ActionNames": []},
    )
    with pytest.raises(UnresolvableError, match="only a role is mapped"):
        deployment.requests_for(call, principal="p", identity_policies=[])


def test_a_stack_named_by_arn_keeps_its_arn(deployment: Deployment) -> None:
    arn = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/0f1e2d3c"
    call = RecordedCall("cloudformation", "GetTemplate", {"StackName": arn})
    (request,) = deployment.requests_for(call, principal="p", identity_policies=[])
    assert (request.action, request.resource) == ("cloudformation:GetTemplate", arn)
