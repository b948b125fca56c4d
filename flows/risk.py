"""The risk flow: what the pipeline runs after ingest (labels once, a first model if needed, the scores)."""

from __future__ import annotations

from prefect import flow, get_run_logger

from devicerisk.flows.score import score_accounts_flow, score_transactions_flow
from devicerisk.flows.train import ingest_and_record_labels, train_flow
from devicerisk.risk.service import not_trainable
from devicerisk.runtime import for_run, sharing
from devicerisk.store import registry


@flow(name="risk")
def risk_flow(data_dir: str | None = None, accounts: bool = True) -> dict[str, int]:
    """After ingest: new labels, a first model if there is none yet, then transaction scores, and account scores
    unless ``accounts`` is False (the 15-minute pipeline leaves them to their daily deployment).

    Labels are ingested once, here; the subflows share this run's runtime (settings and keys read once).
    """
    rt = for_run(data_dir)
    s = rt.settings
    with sharing(rt):
        ingest_and_record_labels(rt)
        if registry.champion(s.models_dir) is None:
            why = not_trainable(rt.risk, rt.plan)
            if why is not None:
                get_run_logger().warning("no model yet, and none can be trained: %s; nothing scored", why)
                return {"transactions_scored": 0, "accounts_scored": 0}
            get_run_logger().info("no champion model yet: training one first")
            train_flow(data_dir, labels=False)
        counts = score_transactions_flow(data_dir, labels=False)
        return counts | (score_accounts_flow(data_dir) if accounts else {"accounts_scored": 0})
