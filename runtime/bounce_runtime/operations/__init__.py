"""Operator tools that talk to a deployed processor's AWS resources (not used by the Lambda).

``dead_letters``: read, classify and replay the dead-letter queue (boto3 clients injected).
``commands``: the ``python -m bounce_runtime dead-letters list|replay`` command group.
"""
