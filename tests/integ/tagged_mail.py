"""The integration test's assertion function: how many mail objects SES stored under the
processor's prefix, and how many of them the runtime tagged as bounced.

The stored object's key is the prefix plus SES's *inbound* message id, which no API call of the
test knows in advance, so a chain of `AwsApiCall`s cannot pick it out of a listing that also holds
SES's setup notification and the runtime's claim objects. This file is shipped inline (it becomes
`index.py` of a Lambda function: standard library + boto3 only). The test app passes the prefix,
claim suffix and tag key in the invocation's payload, from `cdk_ses_bounce.defaults` and
`bounce_runtime.contract`, and the bucket's name in the environment variable `BUCKET_VARIABLE`
(a token in a payload would not survive integ-tests' encoding of the call's parameters).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

# SES writes this object under the action's prefix when it saves an S3 action (SES Developer
# Guide, "Deliver to S3 bucket action"); it is not mail.
SES_SETUP_NOTIFICATION = "AMAZON_SES_SETUP_NOTIFICATION"
BUCKET_VARIABLE = "MAIL_BUCKET"


def is_mail_key(key: str, prefix: str, claim_suffix: str) -> bool:
    """Whether `key` is a raw mail object that SES stored directly under `prefix`."""
    name = key[len(prefix) :] if key.startswith(prefix) else ""
    return bool(name) and name != SES_SETUP_NOTIFICATION and not name.endswith(claim_suffix)


def summarize(
    s3: Any, *, bucket: str, prefix: str, claim_suffix: str, tag_key: str
) -> dict[str, int]:
    """`mailObjects`: mail objects under `prefix`; `bouncedMailObjects`: those tagged `tag_key`."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    keys = [
        item["Key"]
        for page in pages
        for item in page.get("Contents", [])
        if is_mail_key(item["Key"], prefix, claim_suffix)
    ]
    bounced = 0
    for key in keys:
        tags = s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]
        bounced += any(tag["Key"] == tag_key and tag["Value"] for tag in tags)
    return {"mailObjects": len(keys), "bouncedMailObjects": bounced}


def handler(event: Mapping[str, str], context: object) -> dict[str, int]:
    """Lambda entry point; `event` holds `prefix`, `claimSuffix` and `tagKey`."""
    import boto3  # only in Lambda: the offline tests pass their own client to `summarize`

    return summarize(
        boto3.client("s3"),
        bucket=os.environ[BUCKET_VARIABLE],
        prefix=event["prefix"],
        claim_suffix=event["claimSuffix"],
        tag_key=event["tagKey"],
    )
