"""The score flows: transaction risk after each ingest, account risk daily, and the step the pipeline runs."""

from __future__ import annotations

import uuid

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from devicerisk.config import Settings
from devicerisk.governance.stores import audit_trail
from devicerisk.risk.service import not_trainable, score_accounts, score_transactions
from devicerisk.store import audit, registry
from flows.train import ingest_label_files, settings_of, train_flow


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def transactions(settings: Settings) -> dict[str, int]:
    """Bring the signal log up to date, score new transactions into the lake and republish the serving snapshot."""
    run_id = f"score-{uuid.uuid4().hex[:16]}"  # tags the lake commit; a retry of this task reuses none
    return score_transactions(settings.lake_dir, settings.models_dir, settings.serving_dir, run_id,
                              settings.signals_dir)  # fmt: skip


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def accounts(settings: Settings) -> dict[str, int]:
    """Score every recently active account and republish the serving snapshot."""
    return score_accounts(settings.lake_dir, settings.models_dir, settings.serving_dir)  # idempotent per as-of time


@task(cache_policy=NO_CACHE)
def audit_scoring(trail: audit.Trail, action: str, counts: dict[str, int]) -> None:
    audit.append(trail, actor="score-flow", role="pipeline", action=action, purpose="risk_control",
                 counts=counts)  # fmt: skip
    table = "\n".join(f"| {k} | {v:,} |" for k, v in counts.items())
    create_markdown_artifact(key=action.replace("_", "-"), markdown=f"| count | value |\n|---|---|\n{table}\n",
                             description=f"{action} (counts only)")  # fmt: skip


@flow(name="score-transactions")
def score_transactions_flow(data_dir: str | None = None) -> dict[str, int]:
    """Ingest new labels, then score the transactions not scored yet with the champion model."""
    settings = settings_of(data_dir)
    trail = audit_trail(settings)  # a missing audit key stops the run before it scores
    ingest_label_files(settings, trail)
    counts = transactions(settings)
    audit_scoring(trail, "score_transactions", counts)
    return counts


@flow(name="score-accounts")
def score_accounts_flow(data_dir: str | None = None) -> dict[str, int]:
    """Rescore every recently active account with the champion model."""
    settings = settings_of(data_dir)
    trail = audit_trail(settings)
    counts = accounts(settings)
    audit_scoring(trail, "score_accounts", counts)
    return counts


@flow(name="risk")
def risk_flow(data_dir: str | None = None) -> dict[str, int]:
    """After ingest: new labels, a first model if there is none yet, then transaction and account scores."""
    settings = settings_of(data_dir)
    if registry.champion(settings.models_dir) is None:
        why = not_trainable(settings.lake_dir, settings.risk_label_gap_days, settings.risk_test_days)
        if why is not None:
            get_run_logger().warning("no model yet, and none can be trained: %s; nothing scored", why)
            return {"transactions_scored": 0, "accounts_scored": 0}
        get_run_logger().info("no champion model yet: training one first")
        train_flow(data_dir)
    counts = score_transactions_flow(data_dir)
    return counts | score_accounts_flow(data_dir)
