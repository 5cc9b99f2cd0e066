"""The integration test app (integ_bounce_processor.py) against its checked-in snapshot, without
deploying: a change to what the test deploys or asserts shows here.

Refresh the snapshot with `pytest tests/integ --update-integ-snapshot`, then review its diff.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from construct.test_snapshot import scrub_asset_hashes
from integ import tagged_mail
from integ.snapshot_helpers import SNAPSHOT_DIR, IntegApp, templates_in

from bounce_runtime import contract
from cdk_ses_bounce import defaults

ASSERTIONS_STACK = "SesBounceIntegAssertions"
UNDER_TEST_STACK = "SesBounceInteg"
# integ-tests salts each API call with the synthesis time, so that it runs on every deploy.
SALT = re.compile(r'"salt": "\d+"')


def comparable(template: dict[str, Any]) -> dict[str, Any]:
    """`template` without what changes on every synthesis: asset hashes and API-call salts."""
    unsalted: dict[str, Any] = json.loads(SALT.sub('"salt": "<salt>"', json.dumps(template)))
    return scrub_asset_hashes(unsalted)


def test_comparison_ignores_only_asset_hashes_and_salts() -> None:
    template = {"Resources": {"Call": {"Properties": {"salt": "1796102008888", "api": "x"}}}}
    assert comparable(template) == {
        "Resources": {"Call": {"Properties": {"salt": "<salt>", "api": "x"}}}
    }


def test_templates_match_the_snapshot(integ_app: IntegApp) -> None:
    expected = templates_in(SNAPSHOT_DIR)
    assert sorted(integ_app.templates) == sorted(expected) == [UNDER_TEST_STACK, ASSERTIONS_STACK]
    for stack, template in integ_app.templates.items():
        assert comparable(template) == comparable(expected[stack]), (
            f"{stack} differs from {SNAPSHOT_DIR.name}: if the change is intended, run "
            "`pytest tests/integ --update-integ-snapshot` and review the diff"
        )


def test_integ_manifest_matches_the_snapshot(integ_app: IntegApp) -> None:
    manifest = json.loads((integ_app.outdir / "integ.json").read_text())
    assert manifest == json.loads((SNAPSHOT_DIR / "integ.json").read_text())
    assert manifest["testCases"] == {
        "BounceProcessorInteg/DefaultTest": {
            "stacks": [UNDER_TEST_STACK],
            "stackUpdateWorkflow": False,
            "assertionStack": ASSERTIONS_STACK,
            "assertionStackName": ASSERTIONS_STACK,
        }
    }


def api_calls(integ_app: IntegApp, service: str, api: str) -> list[dict[str, Any]]:
    """Properties of the assertion stack's `service.api` calls (integ-tests custom resources)."""
    return [
        resource["Properties"]
        for resource in integ_app.templates[ASSERTIONS_STACK]["Resources"].values()
        if resource["Type"] == f"Custom::DeployAssert@SdkCall{service}{api}"
    ]


def test_sends_one_message_to_the_recipient_the_rule_owns(integ_app: IntegApp) -> None:
    module = integ_app.module
    domain = module.PLACEHOLDER_DOMAIN
    recipient = f"{module.RECIPIENT_LOCAL_PART}@{domain}"
    (send,) = api_calls(integ_app, "SESv2", "sendEmail")
    parameters = {name: json.loads(value) for name, value in send["parameters"].items()}
    assert parameters["Destination"] == {"ToAddresses": [recipient]}
    assert parameters["FromEmailAddress"] == f"{module.SENDER_LOCAL_PART}@{domain}"
    (rule,) = integ_app.resources(UNDER_TEST_STACK, "AWS::SES::ReceiptRule")
    assert rule["Properties"]["Rule"]["Recipients"] == [recipient]
    (activation,) = integ_app.resources(UNDER_TEST_STACK, "Custom::SesActiveReceiptRuleSet")
    assert activation is not None


def test_waits_for_the_bounce_tag_after_sending(integ_app: IntegApp) -> None:
    (invoke,) = api_calls(integ_app, "Lambda", "invoke")
    payload = json.loads(json.loads(invoke["parameters"]["Payload"]))
    assert payload == {
        "prefix": defaults.OBJECT_KEY_PREFIX,
        "claimSuffix": contract.CLAIM_SUFFIX,
        "tagKey": contract.BOUNCE_TAG_KEY,
    }
    assert json.loads(invoke["expected"]) == {
        "$ObjectLike": {"Payload": {"$SerializedJson": {"mailObjects": 1, "bouncedMailObjects": 1}}}
    }
    resources = integ_app.templates[UNDER_TEST_STACK]["Resources"]
    source = Path(tagged_mail.__file__).read_text()
    (reader,) = [
        resource
        for resource in resources.values()
        if resource["Type"] == "AWS::Lambda::Function"
        and resource["Properties"]["Code"].get("ZipFile") == source
    ]
    (bucket,) = [
        key for key, resource in resources.items() if resource["Type"] == "AWS::S3::Bucket"
    ]
    assert reader["Properties"]["Environment"]["Variables"] == {
        tagged_mail.BUCKET_VARIABLE: {"Ref": bucket}
    }
    assert "stateMachineArn" in invoke, "the assertion must be retried until the tag appears"
    assertions = integ_app.templates[ASSERTIONS_STACK]["Resources"]
    (send_id,) = [key for key, value in assertions.items() if "sendEmail" in value["Type"]]
    invoke_ids = [key for key, value in assertions.items() if value["Type"].endswith("invoke")]
    assert [assertions[key].get("DependsOn") for key in invoke_ids] == [[send_id]]
