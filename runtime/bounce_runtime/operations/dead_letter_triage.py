"""Triage: the dead letters a scan read, grouped by reason, as a table or JSON."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Final

from bounce_runtime.operations.dead_letter_scan import DeadLetter
from bounce_runtime.operations.reason_classes import REPLAY_NO, iso, printable


@dataclass
class ReasonSummary:
    """The dead letters of one reason group (``ses-rejected:X`` counts under ``ses-rejected``)."""

    reason: str
    replay: str
    meaning: str
    count: int = 0
    oldest: datetime | None = None
    newest: datetime | None = None
    past_window: int = 0
    variants: dict[str, int] = field(default_factory=dict)
    samples: list[str] = field(default_factory=list)

    def add(self, letter: DeadLetter, *, now: datetime, samples: int) -> None:
        self.count += 1
        if letter.sent_at is not None:
            self.oldest = min(filter(None, (self.oldest, letter.sent_at)))
            self.newest = max(filter(None, (self.newest, letter.sent_at)))
        if letter.window_closing(now):
            self.past_window += 1
        if letter.reason != self.reason:
            self.variants[letter.reason] = self.variants.get(letter.reason, 0) + 1
        sample = letter.ses_message_id or f"sqs:{letter.sqs_message_id}"
        if len(self.samples) < samples and sample not in self.samples:
            self.samples.append(sample)

    def to_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "count": self.count,
            "oldest": iso(self.oldest) if self.oldest else None,
            "newest": iso(self.newest) if self.newest else None,
            "replay": self.replay,
            "past_24h_window": self.past_window,
            "variants": dict(sorted(self.variants.items())),
            "sample_ses_message_ids": self.samples,
            "meaning": self.meaning,
        }


def summarize(
    letters: Iterable[DeadLetter], *, now: datetime, samples: int = 3
) -> list[ReasonSummary]:
    """Group dead letters by reason; the largest group first."""
    groups: dict[str, ReasonSummary] = {}
    for letter in letters:
        group = groups.get(letter.reason_group)
        if group is None:
            reason_class = letter.reason_class
            group = groups[letter.reason_group] = ReasonSummary(
                reason=letter.reason_group,
                replay=reason_class.replay if reason_class else REPLAY_NO,
                meaning=reason_class.meaning if reason_class else "unknown reason",
            )
        group.add(letter, now=now, samples=samples)
    return sorted(groups.values(), key=lambda group: (-group.count, group.reason))


TABLE_HEADER: Final = ("REASON", "COUNT", "OLDEST", "NEWEST", "REPLAY", "PAST 24H", "SAMPLE IDS")


def format_table(summaries: Sequence[ReasonSummary]) -> str:
    """A plain-text table, one row per reason group and one per ``:<detail>`` variant."""
    rows: list[tuple[str, ...]] = [TABLE_HEADER]
    for group in summaries:
        rows.append(
            (
                printable(group.reason),
                str(group.count),
                iso(group.oldest) if group.oldest else "-",
                iso(group.newest) if group.newest else "-",
                group.replay,
                str(group.past_window),
                printable(", ".join(group.samples)),
            )
        )
        for variant, count in sorted(group.variants.items()):
            suffix = printable(variant[len(group.reason) :])
            rows.append(("  " + suffix, str(count), "", "", "", "", ""))
    widths = [max(len(row[column]) for row in rows) for column in range(len(TABLE_HEADER))]
    right = {1, 5}  # counts are right-aligned
    lines = [
        "  ".join(
            cell.rjust(width) if column in right else cell.ljust(width)
            for column, (cell, width) in enumerate(zip(row, widths, strict=True))
        ).rstrip()
        for row in rows
    ]
    return "\n".join(lines)
