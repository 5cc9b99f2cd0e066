"""The integration test's assertion function (tagged_mail.py) against moto's S3."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from integ import tagged_mail
from moto import mock_aws

from bounce_runtime import contract
from cdk_ses_bounce import defaults

BUCKET = "mail"
PREFIX = defaults.OBJECT_KEY_PREFIX


@pytest.fixture
def s3() -> Iterator[Any]:
    with mock_aws():
        client = boto3.client("s3", region_name="eu-west-1")
        client.create_bucket(
            Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": "eu-west-1"}
        )
        yield client


def put(s3: Any, key: str, tags: dict[str, str] | None = None) -> None:
    tagging = "&".join(f"{name}={value}" for name, value in (tags or {}).items())
    s3.put_object(Bucket=BUCKET, Key=key, Body=b"mail", Tagging=tagging)


def summary(s3: Any, event_prefix: str = PREFIX) -> dict[str, int]:
    return tagged_mail.summarize(
        s3,
        bucket=BUCKET,
        prefix=event_prefix,
        claim_suffix=contract.CLAIM_SUFFIX,
        tag_key=contract.BOUNCE_TAG_KEY,
    )


def test_counts_mail_objects_and_those_tagged_as_bounced(s3: Any) -> None:
    put(s3, f"{PREFIX}{tagged_mail.SES_SETUP_NOTIFICATION}")
    put(s3, f"{PREFIX}bounced", {contract.BOUNCE_TAG_KEY: "0102-bounce-id"})
    put(s3, f"{PREFIX}bounced{contract.CLAIM_SUFFIX}")
    put(s3, f"{PREFIX}accepted", {"other": "tag"})
    put(s3, "elsewhere/bounced", {contract.BOUNCE_TAG_KEY: "0102-other"})
    assert summary(s3) == {"mailObjects": 2, "bouncedMailObjects": 1}


def test_an_empty_tag_value_is_not_a_bounce(s3: Any) -> None:
    put(s3, f"{PREFIX}message", {contract.BOUNCE_TAG_KEY: ""})
    assert summary(s3) == {"mailObjects": 1, "bouncedMailObjects": 0}


def test_nothing_received_yet(s3: Any) -> None:
    put(s3, f"{PREFIX}{tagged_mail.SES_SETUP_NOTIFICATION}")
    assert summary(s3) == {"mailObjects": 0, "bouncedMailObjects": 0}


def test_handler_reads_the_bucket_from_its_environment_and_the_rest_from_the_event(
    s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    put(s3, f"{PREFIX}bounced", {contract.BOUNCE_TAG_KEY: "0102-bounce-id"})
    monkeypatch.setattr(boto3, "client", lambda service: s3)
    monkeypatch.setenv(tagged_mail.BUCKET_VARIABLE, BUCKET)
    event = {
        "prefix": PREFIX,
        "claimSuffix": contract.CLAIM_SUFFIX,
        "tagKey": contract.BOUNCE_TAG_KEY,
    }
    assert tagged_mail.handler(event, None) == {"mailObjects": 1, "bouncedMailObjects": 1}
