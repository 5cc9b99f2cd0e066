"""S3's clock as its answers state it: the ``Date`` header. No botocore import, so the operator
commands can use it without loading the AWS SDK for ``--help``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any


def answer_date(response: Mapping[str, Any]) -> datetime | None:
    """The ``Date`` header of an S3 answer (S3's clock), or None when absent or unreadable."""
    from email.utils import parsedate_to_datetime  # only when a claim is checked: cold start

    headers = (response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}
    text = headers.get("date") if isinstance(headers, Mapping) else None
    if not isinstance(text, str):
        return None
    try:
        moment = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    return moment if moment.tzinfo is not None else None
