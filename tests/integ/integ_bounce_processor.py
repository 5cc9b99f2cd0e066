#!/usr/bin/env python3
"""Integration test (integ-runner + integ-tests-alpha): a deployed BounceProcessor bounces a
message that SES received, and tags the stored mail object as bounced.

Stacks: `SesBounceInteg` (the processor, its rule set made active, and a small function that reads
the mail objects' tags) and `SesBounceIntegAssertions` (integ-tests' assertion provider). After
deploying them, the assertions send one message with SES `SendEmail` to the processor's recipient,
then poll the tag reader until the mail object stored under the processor's prefix carries the
bounce tag (`bounce_runtime.contract.BOUNCE_TAG_KEY`), or fail after `ASSERTION_TIMEOUT`.

Offline, `make test` compares this app's synthesized templates with `integ_bounce_processor.py.
snapshot/` (tests/integ/test_integ_snapshot.py). With an AWS account, see tests/integ/README.md
(integ-runner cannot read this aws-cdk-lib's cloud assemblies yet; the CDK CLI deploys it): the
environment variables below name a domain that receives mail in the deployment region.
"""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_s3 as s3
from aws_cdk import integ_tests_alpha as integ
from constructs import Construct

from bounce_runtime import contract
from cdk_ses_bounce import BounceProcessor, defaults

# A domain verified in SES in the deployment region, whose MX points at
# inbound-smtp.<region>.amazonaws.com. The placeholder keeps the snapshot stable.
DOMAIN_VARIABLE = "SES_BOUNCE_INTEG_DOMAIN"
# The From of the test message: a verified identity (the domain's identity covers its addresses).
SENDER_VARIABLE = "SES_BOUNCE_INTEG_SENDER"
PLACEHOLDER_DOMAIN = "integ.example.com"
RECIPIENT_LOCAL_PART = "bounce-integ"
SENDER_LOCAL_PART = "integ-sender"
BOUNCE_SENDER_LOCAL_PART = "mailer-daemon"

TAG_READER_SOURCE = Path(__file__).with_name("tagged_mail.py")
TAG_READER_BUCKET_VARIABLE: str = runpy.run_path(str(TAG_READER_SOURCE))["BUCKET_VARIABLE"]
# SES receives within seconds; the runtime is paced at 1 SendBounce/s and sends one bounce.
ASSERTION_TIMEOUT = cdk.Duration.minutes(10)
ASSERTION_INTERVAL = cdk.Duration.seconds(20)
UNRESOLVED_REGION_WARNING = "cdk-ses-bounce:unresolvedRegion"


class BounceProcessorUnderTest(cdk.Stack):
    """The processor for one owned recipient, and a function that reads its mail objects' tags.

    Region-agnostic (integ-runner deploys it to each `--parallel-regions` region); the mail bucket
    is emptied and deleted with the stack so that the runner's clean-up succeeds.
    """

    def __init__(self, scope: Construct, construct_id: str, *, domain: str) -> None:
        super().__init__(scope, construct_id)
        self.recipient = f"{RECIPIENT_LOCAL_PART}@{domain}"
        bucket = s3.Bucket(
            self,
            "MailBucket",
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            removal_policy=cdk.RemovalPolicy.DESTROY,
            auto_delete_objects=True,
        )
        self.processor = BounceProcessor(
            self,
            "BounceProcessor",
            recipients=[self.recipient],
            bounce_sender=f"{BOUNCE_SENDER_LOCAL_PART}@{domain}",
            bucket=bucket,
            activate_rule_set=True,
        )
        cdk.Annotations.of(self.processor).acknowledge_warning(
            UNRESOLVED_REGION_WARNING,
            "integ-runner chooses the region; run it only where the domain's MX points",
        )
        self.tag_reader = lambda_.Function(
            self,
            "TagReader",
            runtime=defaults.FUNCTION_RUNTIME,
            architecture=defaults.FUNCTION_ARCHITECTURE,
            handler="index.handler",
            code=lambda_.Code.from_inline(TAG_READER_SOURCE.read_text()),
            timeout=cdk.Duration.seconds(30),
            environment={TAG_READER_BUCKET_VARIABLE: self.processor.bucket.bucket_name},
        )
        self.processor.grant_read_mail(self.tag_reader)

    def tag_reader_payload(self) -> str:
        """The tag reader's event: the processor's key prefix (`inbound/` by default) and the
        names the runtime writes."""
        return json.dumps(
            {
                "prefix": self.processor.object_key_prefix,
                "claimSuffix": contract.CLAIM_SUFFIX,
                "tagKey": contract.BOUNCE_TAG_KEY,
            }
        )


def build_app(
    *, domain: str, sender: str, outdir: str | None = None, context: dict[str, Any] | None = None
) -> cdk.App:
    """The integration test app (not yet synthesized) for the receiving `domain`; the test
    message comes from `sender`."""
    app = cdk.App(outdir=outdir, context=context)
    under_test = BounceProcessorUnderTest(app, "SesBounceInteg", domain=domain)
    test = integ.IntegTest(
        app,
        "BounceProcessorInteg",
        test_cases=[under_test],
        assertion_stack=cdk.Stack(app, "SesBounceIntegAssertions"),
        # The rule set activation replaces the account's active rule set; no update workflow.
        stack_update_workflow=False,
    )
    send = test.assertions.aws_api_call(
        "SESv2",
        "sendEmail",
        {
            "FromEmailAddress": sender,
            "Destination": {"ToAddresses": [under_test.recipient]},
            "Content": {
                "Simple": {
                    "Subject": {"Data": "cdk-ses-bounce integration test"},
                    "Body": {"Text": {"Data": "This message should come back as a bounce."}},
                }
            },
        },
    )
    tagged = test.assertions.invoke_function(
        function_name=under_test.tag_reader.function_name,
        payload=under_test.tag_reader_payload(),
    )
    tagged.expect(
        integ.ExpectedResult.object_like(
            {"Payload": integ.Match.serialized_json({"mailObjects": 1, "bouncedMailObjects": 1})}
        )
    ).wait_for_assertions(total_timeout=ASSERTION_TIMEOUT, interval=ASSERTION_INTERVAL)
    send.next(tagged)
    return app


if __name__ == "__main__":
    integ_domain = os.environ.get(DOMAIN_VARIABLE) or PLACEHOLDER_DOMAIN
    integ_sender = os.environ.get(SENDER_VARIABLE) or f"{SENDER_LOCAL_PART}@{integ_domain}"
    build_app(domain=integ_domain, sender=integ_sender).synth()
