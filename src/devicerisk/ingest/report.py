"""Summaries of ingest runs for people: the CLI, Prefect artifacts and the demo."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

from devicerisk.ingest.pipeline import BatchResult


@dataclass(slots=True)
class IngestSummary:
    """Totals over the batches of one run (already-ingested and failed batches are counted apart)."""

    batches: int = 0
    skipped_batches: int = 0
    failed_batches: int = 0  # could not be ingested at all (or were refused): set aside in landing/failed
    landing_strays: int = 0  # files in landing that no ingest reads, kept until the landing retention
    records_read: int = 0
    accepted: int = 0
    quarantined: int = 0
    consent_dropped: int = 0
    duplicates: int = 0
    identifiers_pseudonymised: int = 0
    landing_removed: int = 0
    reasons: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def summarise(
    results: list[BatchResult], skipped: int = 0, landing_removed: int = 0, strays: dict[str, str] | None = None
) -> IngestSummary:
    """Add up batch results; ``skipped`` counts landing files found already ingested, ``strays`` maps each
    landing file no ingest reads to what it is."""
    strays = strays or {}
    summary = IngestSummary(skipped_batches=skipped, landing_removed=landing_removed, landing_strays=len(strays))
    reasons: Counter[str] = Counter()
    for r in results:
        if r.failed is not None:
            summary.failed_batches += 1
            summary.notes += [f"{r.file_name}: {r.failed}", *(f"{r.file_name}: {n}" for n in r.notes)]
            continue
        if r.already_done:
            summary.skipped_batches += 1
            continue
        summary.batches += 1
        summary.records_read += r.records_read
        summary.accepted += r.accepted
        summary.quarantined += r.quarantined
        summary.consent_dropped += r.consent_dropped
        summary.duplicates += r.duplicates
        summary.identifiers_pseudonymised += r.identifiers_pseudonymised
        reasons.update(r.reasons)
        summary.notes += [f"{r.file_name}: {n}" for n in r.notes]
    summary.reasons = dict(reasons.most_common())
    summary.notes += [f"landing/{name}: {what}" for name, what in strays.items()]
    return summary


def summary_rows(summary: IngestSummary) -> list[tuple[str, int]]:
    """The headline figures as (label, count) rows."""
    return [
        ("batches ingested", summary.batches),
        ("batches already ingested (skipped)", summary.skipped_batches),
        ("batches failed or refused (set aside)", summary.failed_batches),
        ("landing files not ingested (not batches)", summary.landing_strays),
        ("records read", summary.records_read),
        ("accepted into the lake", summary.accepted),
        ("quarantined", summary.quarantined),
        ("dropped by consent", summary.consent_dropped),
        ("duplicates", summary.duplicates),
        ("identifiers pseudonymised", summary.identifiers_pseudonymised),
        ("raw landing batches removed", summary.landing_removed),
    ]


def summary_markdown(summary: IngestSummary) -> str:
    """The summary as a Markdown table, with reject and drop reasons."""
    lines = ["| | count |", "|---|---:|", *(f"| {label} | {n:,} |" for label, n in summary_rows(summary))]
    if summary.reasons:
        lines += ["", "| reason | records |", "|---|---:|", *(f"| {r} | {n:,} |" for r, n in summary.reasons.items())]
    if summary.notes:
        lines += ["", *(f"- {n}" for n in summary.notes)]
    return "\n".join(lines) + "\n"


def audit_counts(summary: IngestSummary) -> dict[str, int]:
    """The run's counts for its audit record."""
    return {
        "batches": summary.batches,
        "failed_batches": summary.failed_batches,
        "landing_strays": summary.landing_strays,
        "records_read": summary.records_read,
        "accepted": summary.accepted,
        "quarantined": summary.quarantined,
        "consent_dropped": summary.consent_dropped,
        "duplicates": summary.duplicates,
        "identifiers_pseudonymised": summary.identifiers_pseudonymised,
        "landing_removed": summary.landing_removed,
    }
