"""The score flows: transaction risk after each ingest, and account risk daily."""

from __future__ import annotations

import uuid

from prefect import flow
from prefect.artifacts import create_markdown_artifact

from devicerisk.flows.tasks import record, retried, step
from devicerisk.flows.train import ingest_and_record_labels
from devicerisk.risk.publish import masked_top_accounts, top_accounts_markdown
from devicerisk.risk.service import score_accounts, score_transactions
from devicerisk.runtime import Runtime, for_run


@retried
def transactions(rt: Runtime) -> dict[str, int]:
    """Bring the signal log up to date, score new transactions into the lake and republish the serving snapshot."""
    run_id = f"score-{uuid.uuid4().hex[:16]}"  # tags the lake commit; a retry of this task reuses none
    return score_transactions(rt.risk, run_id)


@retried
def accounts(rt: Runtime) -> dict[str, int]:
    """Score every recently active account and republish the serving snapshot."""
    return score_accounts(rt.risk)  # idempotent per as-of time


@step
def publish_counts(action: str, counts: dict[str, int]) -> None:
    """A Prefect artifact with a scoring run's counts."""
    table = "\n".join(f"| {k} | {v:,} |" for k, v in counts.items())
    create_markdown_artifact(
        key=action.replace("_", "-"),
        markdown=f"| count | value |\n|---|---|\n{table}\n",
        description=f"{action} (counts only)",
    )


@step
def publish_top_accounts(rt: Runtime, n: int = 20) -> int:
    """The day's riskiest accounts, masked, as a Prefect artifact; audited like a lookup. Returns how many."""
    rows = masked_top_accounts(rt.settings.serving_dir, n)
    create_markdown_artifact(
        key="top-risk-accounts", markdown=top_accounts_markdown(rows), description="Top-risk accounts (masked)"
    )
    return len(rows)


@flow(name="score-transactions")
def score_transactions_flow(data_dir: str | None = None, labels: bool = True) -> dict[str, int]:
    """Ingest new labels (unless ``labels`` is False: the calling flow did), then score the transactions not
    scored yet with the champion model."""
    rt = for_run(data_dir)  # a missing key stops the run before it scores
    if labels:
        ingest_and_record_labels(rt)
    counts = transactions(rt)
    record(rt.audit, "score-flow", "score_transactions", counts)
    publish_counts("score_transactions", counts)
    return counts


@flow(name="score-accounts")
def score_accounts_flow(data_dir: str | None = None) -> dict[str, int]:
    """Rescore every recently active account with the champion model."""
    rt = for_run(data_dir)
    counts = accounts(rt)
    record(rt.audit, "score-flow", "score_accounts", counts)
    publish_counts("score_accounts", counts)
    shown = publish_top_accounts(rt)
    record(rt.audit, "score-flow", "publish_top_accounts", {"accounts_shown": shown})
    return counts
