#!/usr/bin/env python3
"""Example app: one stack composing a BounceProcessor, configured from CDK context.

As `cdk init` writes it, the stack's account and region are the CLI's: `CDK_DEFAULT_ACCOUNT`
and `CDK_DEFAULT_REGION`, which the CDK CLI sets from the credentials and profile it runs with.
Context overrides them (`-c account=... -c region=...`). With neither (no credentials, as in
`make synth`), a placeholder account and `eu-west-1` let `cdk synth` work offline; a deploy always
has credentials, so it never uses the placeholder.

    cdk synth -c recipients=retired.example.com,old-sales@example.com \
              -c bounceSender=mailer-daemon@example.com -c region=eu-west-1
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

import aws_cdk as cdk
from constructs import Construct

from cdk_ses_bounce import BounceProcessor

DEFAULT_CONTEXT: dict[str, str] = {
    "stackName": "SesBounceExample",
    "account": "111111111111",  # only when neither context nor the CLI names one (offline synth)
    "region": "eu-west-1",
    "recipients": "retired.example.com,old-sales@example.com",
    "bounceSender": "mailer-daemon@example.com",
}
# The environment variables the CDK CLI sets for the app, by context key they stand in for.
CLI_ENVIRONMENT: dict[str, str] = {"account": "CDK_DEFAULT_ACCOUNT", "region": "CDK_DEFAULT_REGION"}


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


def context_value(app: cdk.App, key: str, environ: Mapping[str, str] | None = None) -> str:
    """The context value for `key`, else the CLI's environment variable for it (account and
    region), else the example's default."""
    value = app.node.try_get_context(key)
    if value is not None:
        return str(value)
    variable = CLI_ENVIRONMENT.get(key)
    from_cli = (os.environ if environ is None else environ).get(variable) if variable else None
    return from_cli or DEFAULT_CONTEXT[key]


def build_app(
    context: dict[str, Any] | None = None,
    outdir: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> cdk.App:
    """Build the example app (not yet synthesized); `environ` defaults to `os.environ`."""
    app = cdk.App(context=context, outdir=outdir)
    recipients = [r.strip() for r in context_value(app, "recipients").split(",") if r.strip()]
    ExampleStack(
        app,
        context_value(app, "stackName"),
        recipients=recipients,
        bounce_sender=context_value(app, "bounceSender"),
        env=cdk.Environment(
            account=context_value(app, "account", environ),
            region=context_value(app, "region", environ),
        ),
    )
    return app


if __name__ == "__main__":
    build_app().synth()
