#!/usr/bin/env python3
"""Example app: one stack composing a BounceProcessor, configured from CDK context.

Every setting has a working default, so `cdk synth` works with no AWS account:

    cdk synth -c recipients=retired.example.com,old-sales@example.com \
              -c bounceSender=mailer-daemon@example.com -c region=eu-west-1
"""

from __future__ import annotations

from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_ses_bounce import BounceProcessor

DEFAULT_CONTEXT: dict[str, str] = {
    "stackName": "SesBounceExample",
    "account": "111111111111",
    "region": "eu-west-1",
    "recipients": "retired.example.com,old-sales@example.com",
    "bounceSender": "mailer-daemon@example.com",
}


class ExampleStack(cdk.Stack):
    """A stack that bounces all mail to the retired recipients as DoesNotExist."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        recipients: list[str],
        bounce_sender: str,
        **kwargs: Any,
    ) -> None:
        super().__init__(scope, construct_id, **kwargs)
        self.bounce_processor = BounceProcessor(
            self, "BounceProcessor", recipients=recipients, bounce_sender=bounce_sender
        )
        # For operators and the dead-letter CLI: no URL copied by hand.
        cdk.CfnOutput(
            self,
            "BounceProcessorQueueUrl",
            value=self.bounce_processor.queue.queue_url,
            description=f"Queue of {self.bounce_processor.node.path}",
        )
        cdk.CfnOutput(
            self,
            "BounceProcessorDeadLetterQueueUrl",
            value=self.bounce_processor.dead_letter_queue.queue_url,
            description=f"Dead-letter queue of {self.bounce_processor.node.path}",
        )


def context_value(app: cdk.App, key: str) -> str:
    """The context value for `key`, or the example's default."""
    value = app.node.try_get_context(key)
    return str(value) if value is not None else DEFAULT_CONTEXT[key]


def build_app(context: dict[str, Any] | None = None, outdir: str | None = None) -> cdk.App:
    """Build the example app (not yet synthesized)."""
    app = cdk.App(context=context, outdir=outdir)
    recipients = [r.strip() for r in context_value(app, "recipients").split(",") if r.strip()]
    ExampleStack(
        app,
        context_value(app, "stackName"),
        recipients=recipients,
        bounce_sender=context_value(app, "bounceSender"),
        env=cdk.Environment(
            account=context_value(app, "account"), region=context_value(app, "region")
        ),
    )
    return app


if __name__ == "__main__":
    build_app().synth()
