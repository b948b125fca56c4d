"""The score flows: transaction risk after each ingest, and account risk daily.

With a Dask scheduler configured, transactions are scored in slices, one per Dask worker thread; the plan (which
refreshes the signal log) and the one lake commit stay on the flow's process.
"""

from __future__ import annotations

import uuid

import pyarrow as pa
from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from devicerisk.config import Settings
from devicerisk.flows import runners
from devicerisk.flows.tasks import record, retried, step
from devicerisk.flows.train import ingest_and_record_labels
from devicerisk.risk.publish import masked_top_accounts, top_accounts_markdown
from devicerisk.risk.scoring import (
    ScorePart,
    ScorePlan,
    commit_transactions,
    plan_transactions,
    score_part,
    score_transactions,
)
from devicerisk.risk.service import RiskStores, score_accounts
from devicerisk.runtime import Runtime, for_run
from devicerisk.store import registry


@retried
def transactions(rt: Runtime) -> dict[str, int]:
    """Bring the signal log up to date, score new transactions into the lake and republish the serving snapshot."""
    run_id = f"score-{uuid.uuid4().hex[:16]}"  # tags the lake commit; a retry of this task reuses none
    return score_transactions(rt.risk, run_id)


@retried
def plan_scores(rt: Runtime) -> ScorePlan | None:
    """Refresh the signal log and list the transactions to score (None: there are none)."""
    return plan_transactions(rt.risk)


@retried
def score_slice(data_dir: str, version: str, part: ScorePart) -> pa.Table:
    """Score one part on a Dask worker: it reads the stores from its own settings and writes nothing."""
    return score_part(RiskStores.of(Settings.at(data_dir)), version, part)


@retried
def commit_scores(rt: Runtime, plan: ScorePlan, parts: list[pa.Table]) -> dict[str, int]:
    """The one lake commit of every part's scores, and the serving snapshot."""
    return commit_transactions(rt.risk, plan, parts, f"score-{uuid.uuid4().hex[:16]}")


def transactions_on_dask(rt: Runtime) -> dict[str, int]:
    """Score the transactions not scored yet in a slice per Dask worker thread, then commit them all from this
    process."""
    plan = plan_scores(rt)
    if plan is None:
        return {"transactions_scored": 0, "highest": 0}
    where = str(rt.settings.data_dir.resolve())  # the workers' working folder is not this one
    futures = [score_slice.submit(where, plan.version, part) for part in plan.slices(runners.slots())]
    return commit_scores(rt, plan, [f.result() for f in futures])


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


@flow(name="score-transactions", task_runner=runners.ConfiguredTaskRunner(threads=1))
def score_transactions_flow(data_dir: str | None = None, labels: bool = True) -> dict[str, int]:
    """Ingest new labels (unless ``labels`` is False: the calling flow did), then score the transactions not
    scored yet with the champion model."""
    rt = for_run(data_dir)  # a missing key stops the run before it scores
    if labels:
        ingest_and_record_labels(rt)
    counts = transactions_on_dask(rt) if runners.on_dask() else transactions(rt)
    record(rt.audit, "score-flow", "score_transactions", counts, purpose="risk_control")
    publish_counts("score_transactions", counts)
    return counts


@flow(name="score-accounts")
def score_accounts_flow(data_dir: str | None = None) -> dict[str, int]:
    """Rescore every recently active account with the champion model. With no model yet (a new install), it says
    so and scores nothing: the daily deployment's run completes (the pipeline trains the first model)."""
    rt = for_run(data_dir)
    if registry.champion(rt.settings.models_dir) is None:
        get_run_logger().warning("no model yet, so no account scored: the pipeline trains the first one")
        return {"accounts_scored": 0}
    counts = accounts(rt)
    record(rt.audit, "score-flow", "score_accounts", counts, purpose="risk_control")
    publish_counts("score_accounts", counts)
    shown = publish_top_accounts(rt)
    record(rt.audit, "score-flow", "publish_top_accounts", {"accounts_shown": shown}, purpose="risk_control")
    return counts
