"""Operator tools that talk to a deployed processor's AWS resources (not used by the Lambda).

``dead_letters`` re-exports the pieces: ``reason_classes``, ``dead_letter_scan`` (read the
dead-letter queue without consuming it), ``dead_letter_triage`` (``list``), ``replay`` and
``stack_lookup`` (boto3 clients injected). ``commands``: the ``cdk-ses-bounce dead-letters
list|replay`` command group; ``command_support``: the session from ``--profile``/``--region`` and
progress.
``preflight``: the ``cdk-ses-bounce preflight`` command; its checks are pure functions in
``preflight_checks`` and ``preflight_account_checks``, its AWS reads in ``preflight_reads``, its
MX lookups in ``dns_mx`` (stdlib DNS over UDP).
``permissions``: the IAM actions each command calls, declared once (the construct's grants and
docs/operations.md follow it).
"""
