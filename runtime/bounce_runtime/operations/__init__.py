"""Operator tools that talk to a deployed processor's AWS resources (not used by the Lambda).

``dead_letters``: read, classify and replay the dead-letter queue (boto3 clients injected).
``commands``: the ``cdk-ses-bounce dead-letters list|replay`` command group.
``preflight``: the ``cdk-ses-bounce preflight`` command; its checks are pure functions in
``preflight_checks`` and ``preflight_account_checks``, its AWS reads in ``preflight_reads``, its
MX lookups in ``dns_mx`` (stdlib DNS over UDP).
``permissions``: the IAM actions each command calls, declared once (the construct's grants and
docs/operations.md follow it).
"""
