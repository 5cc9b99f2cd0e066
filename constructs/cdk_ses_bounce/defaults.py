"""Safe defaults of the BounceProcessor, in one place (the README's props table quotes them)."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses

OBJECT_KEY_PREFIX: Final = "inbound/"
MAIL_RETENTION: Final = cdk.Duration.days(7)
ACCESS_LOGS_RETENTION: Final = cdk.Duration.days(90)
BUCKET_REMOVAL_POLICY: Final = cdk.RemovalPolicy.RETAIN
TLS_POLICY: Final = ses.TlsPolicy.OPTIONAL

RATE_PER_SECOND: Final = 1.0
MAX_RATE_PER_SECOND: Final = 1000.0
MAX_CONCURRENCY: Final = 2
BATCH_SIZE: Final = 10
FUNCTION_TIMEOUT: Final = cdk.Duration.minutes(2)
# The runtime starts no record with less than ~40-50 s left (S3 calls, one send, tagging).
RECORD_TIME_MARGIN_SECONDS: Final = 50
MIN_FUNCTION_TIMEOUT_SECONDS: Final = 60
FUNCTION_MEMORY_MB: Final = 256
VISIBILITY_TIMEOUT_FACTOR: Final = 6
MAX_RECEIVE_COUNT: Final = 10
DEAD_LETTER_RETENTION: Final = cdk.Duration.days(14)
LOG_RETENTION: Final = logs.RetentionDays.THREE_MONTHS

METRICS_NAMESPACE: Final = "CdkSesBounce"
OLDEST_MESSAGE_AGE_THRESHOLD: Final = cdk.Duration.hours(1)
ALARM_PERIOD: Final = cdk.Duration.minutes(5)

POLICY_LAYER_PATH: Final = "cdk-ses-bounce/policy.json"
RUNTIME_HANDLER: Final = "bounce_runtime.handler.handler"

RECEIVING_REGIONS_CONTEXT_KEY: Final = "cdk-ses-bounce:receivingRegions"
# Regions where SES receives mail (endpoint table, January 2024); AWS adds regions, so this is
# only a default: override it with the `receiving_regions` prop or the context key above.
RECEIVING_REGIONS: Final = (
    "us-east-1",
    "us-east-2",
    "us-west-2",
    "ap-southeast-1",
    "ap-southeast-2",
    "ap-southeast-3",
    "ap-northeast-1",
    "ca-central-1",
    "eu-central-1",
    "eu-west-1",
    "eu-west-2",
)
