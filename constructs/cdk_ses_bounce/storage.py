"""The raw-mail bucket and its access-log bucket: private, encrypted, TLS-only, expiring."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import aws_cdk as cdk
from aws_cdk import aws_s3 as s3
from constructs import Construct

from cdk_ses_bounce import defaults

# aws-cdk-lib feature flag (cx_api.S3_SERVER_ACCESS_LOGS_USE_BUCKET_POLICY in TypeScript).
S3_ACCESS_LOGS_USE_BUCKET_POLICY: Final = "@aws-cdk/aws-s3:serverAccessLogsUseBucketPolicy"


@dataclass(frozen=True)
class MailStorage:
    """The bucket SES writes raw mail to, and the target of its access logs (None if passed in)."""

    bucket: s3.IBucket
    access_logs_bucket: s3.IBucket | None


def use_bucket_policy_for_access_logs(scope: Construct) -> None:
    """Allow access-log delivery by a bucket policy, not by the legacy log-delivery ACL."""
    scope.node.set_context(S3_ACCESS_LOGS_USE_BUCKET_POLICY, True)


def new_mail_storage(
    scope: Construct,
    *,
    object_key_prefix: str,
    mail_retention: cdk.Duration,
    removal_policy: cdk.RemovalPolicy,
    server_access_logs_bucket: s3.IBucket | None,
) -> MailStorage:
    """`MailBucket` (versioned, raw mail expires) and, unless one is passed, `AccessLogsBucket`."""
    secure: dict[str, Any] = {
        "block_public_access": s3.BlockPublicAccess.BLOCK_ALL,
        "encryption": s3.BucketEncryption.S3_MANAGED,
        "enforce_ssl": True,
        "removal_policy": removal_policy,
    }
    logs_bucket = server_access_logs_bucket
    if logs_bucket is None:
        logs_bucket = s3.Bucket(
            scope,
            "AccessLogsBucket",
            **secure,
            lifecycle_rules=[
                s3.LifecycleRule(id="ExpireAccessLogs", expiration=defaults.ACCESS_LOGS_RETENTION)
            ],
        )
    bucket = s3.Bucket(
        scope,
        "MailBucket",
        **secure,
        versioned=True,
        server_access_logs_bucket=logs_bucket,
        server_access_logs_prefix=defaults.ACCESS_LOGS_PREFIX,
        lifecycle_rules=[
            s3.LifecycleRule(
                id="ExpireRawMail",
                prefix=object_key_prefix or None,
                expiration=mail_retention,
                noncurrent_version_expiration=mail_retention,
            ),
            s3.LifecycleRule(
                id="CleanUp",
                abort_incomplete_multipart_upload_after=defaults.INCOMPLETE_UPLOAD_EXPIRY,
                expired_object_delete_marker=True,
            ),
        ],
    )
    return MailStorage(bucket=bucket, access_logs_bucket=logs_bucket)
