"""The grants of a processor, one per operator role. Mixed into `BounceProcessor`, which
provides the resources."""

from __future__ import annotations

from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sqs as sqs


class BounceProcessorGrants:
    """`grant_*` methods, each returning an `iam.Grant` for one operator role."""

    @property
    def queue(self) -> sqs.Queue:
        raise NotImplementedError

    @property
    def dead_letter_queue(self) -> sqs.Queue:
        raise NotImplementedError

    @property
    def bucket(self) -> s3.IBucket:
        raise NotImplementedError

    @property
    def object_key_prefix(self) -> str:
        raise NotImplementedError

    def grant_consume_dead_letters(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant reading and deleting dead letters (triage) to `grantee`."""
        return self.dead_letter_queue.grant_consume_messages(grantee)

    def grant_replay_dead_letters(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant moving dead letters back: consume the dead-letter queue, send to the queue."""
        return self.grant_consume_dead_letters(grantee).combine(
            self.queue.grant_send_messages(grantee)
        )

    def grant_read_mail(self, grantee: iam.IGrantable) -> iam.Grant:
        """Grant reading the raw mail (objects under the key prefix) to `grantee`."""
        return self.bucket.grant_read(grantee, f"{self.object_key_prefix}*")
