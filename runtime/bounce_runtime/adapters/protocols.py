"""The shapes of what the adapters and the handler are given: the boto3 clients (tests pass fakes
that implement the same) and Lambda's context object.

Imported for type checking only (``if TYPE_CHECKING``), so the Lambda never compiles it.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class SendBounceClient(Protocol):
    """What the sender needs of a boto3 SES client (fakes in tests implement the same)."""

    def send_bounce(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...


class MailObjectClient(Protocol):
    """What the store needs of a boto3 S3 client (fakes in tests implement the same)."""

    def head_object(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_object(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...

    def get_object_tagging(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...

    def put_object_tagging(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...

    def put_object(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...

    def delete_object(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...


class SendMessageClient(Protocol):
    """What the dead-letter queue needs of a boto3 SQS client (fakes implement the same)."""

    def send_message(self, *args: Any, **kwargs: Any) -> Mapping[str, Any]: ...


class LambdaContext(Protocol):
    """The part of Lambda's context object the handler needs (``aws_request_id`` and
    ``function_name`` are read when present)."""

    def get_remaining_time_in_millis(self) -> int: ...
