"""Safe defaults and fixed settings of the BounceProcessor's resources, in one place (the
README's props table quotes them). What the runtime shares lives in `bounce_runtime.contract`."""

from __future__ import annotations

from typing import Final

import aws_cdk as cdk
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_ses as ses

# Receiving and storage.
OBJECT_KEY_PREFIX: Final = "inbound/"
TLS_POLICY: Final = ses.TlsPolicy.OPTIONAL
MAIL_RETENTION: Final = cdk.Duration.days(7)
ACCESS_LOGS_RETENTION: Final = cdk.Duration.days(90)
ACCESS_LOGS_PREFIX: Final = "mail-bucket/"
INCOMPLETE_UPLOAD_EXPIRY: Final = cdk.Duration.days(1)
BUCKET_REMOVAL_POLICY: Final = cdk.RemovalPolicy.RETAIN

# Queues.
VISIBILITY_TIMEOUT_FACTOR: Final = 6
MAX_RECEIVE_COUNT: Final = 10
DEAD_LETTER_RETENTION: Final = cdk.Duration.days(14)

# The function and its pacing.
MAX_CONCURRENCY: Final = 2
MIN_MAX_CONCURRENCY: Final = 2  # the lowest maximum concurrency an SQS event source accepts
BATCH_SIZE: Final = 10
FUNCTION_TIMEOUT: Final = cdk.Duration.minutes(2)
# Above the runtime's largest per-record time margin (contract.record_time_margin_seconds).
MIN_FUNCTION_TIMEOUT_SECONDS: Final = 60
MAX_FUNCTION_TIMEOUT_SECONDS: Final = 900
FUNCTION_MEMORY_MB: Final = 256
FUNCTION_RUNTIME: Final = lambda_.Runtime.PYTHON_3_14
FUNCTION_ARCHITECTURE: Final = lambda_.Architecture.ARM_64
LOG_RETENTION: Final = logs.RetentionDays.THREE_MONTHS
ACTIVATION_MEMORY_MB: Final = 128  # the rule set activation handler (Lambda's default, explicit)
# Lambda caps the environment at 4 KB (names and values); besides the values that grow with the
# props, it holds the variable names, numbers, the policy path, the dead-letter queue URL (at most
# ~170 bytes) and the bucket name (at most 63 bytes).
LAMBDA_ENVIRONMENT_BYTES: Final = 4096
OTHER_ENVIRONMENT_BYTES: Final = 640

# Alarms.
OLDEST_MESSAGE_AGE_THRESHOLD: Final = cdk.Duration.hours(1)
ALARM_PERIOD: Final = cdk.Duration.minutes(5)
METRIC_PERIOD: Final = cdk.Duration.minutes(5)  # of the metric_* methods
DEAD_LETTER_ALARM_PERIOD: Final = cdk.Duration.minutes(1)
# The send-budget alarm fires when the budget was unreachable in this many periods in a row (a
# short DynamoDB blip only delays mail; the records are retried).
SEND_BUDGET_ALARM_PERIODS: Final = 3

# DNS.
MX_PRIORITY: Final = 10

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

# Opt-in regions: "Regions launched after March 20, 2019 are disabled by default" ("Enable or
# disable AWS Regions in your account", AWS Account Management reference,
# https://docs.aws.amazon.com/accounts/latest/reference/manage-acct-regions.html). SES writes to
# S3 there only through the S3 action's IAM role, so the construct creates `MailWriteRole` in them
# (receiving.py); for a region added later, pass `mail_write_role=True`.
OPT_IN_REGIONS: Final = frozenset(
    {
        "af-south-1",
        "ap-east-1",
        "ap-east-2",
        "ap-south-2",
        "ap-southeast-3",
        "ap-southeast-4",
        "ap-southeast-5",
        "ap-southeast-6",
        "ap-southeast-7",
        "ca-west-1",
        "eu-central-2",
        "eu-south-1",
        "eu-south-2",
        "il-central-1",
        "me-central-1",
        "me-south-1",
        "mx-central-1",
    }
)
