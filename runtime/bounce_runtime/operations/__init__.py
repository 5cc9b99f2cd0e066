"""Operator tools that talk to a deployed processor's AWS resources (not used by the Lambda).

``dead_letters`` re-exports the pieces: ``reason_classes``, ``dead_letter_scan`` (read the
dead-letter queue without consuming it), ``dead_letter_triage`` (``list``), ``replay`` and
``stack_lookup`` (boto3 clients injected). ``commands``: the ``dead-letters list|replay``
command group; ``command_support``: the session from ``--profile``/``--region`` and progress.
"""
