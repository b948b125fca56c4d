"""The train flow (weekly): both risk models on the lake, the model card, the promotion gate."""

from __future__ import annotations

from prefect import flow, get_run_logger
from prefect.artifacts import create_markdown_artifact

from devicerisk.flows.tasks import record, retried, step
from devicerisk.risk.labels import ingest_labels
from devicerisk.risk.publish import card_markdown
from devicerisk.risk.service import TrainOutcome, not_trainable, train_and_register
from devicerisk.risk.truth import pseudonymised_truth
from devicerisk.runtime import Runtime, for_run


@retried
def ingest_label_files(rt: Runtime) -> dict[str, int]:
    """New feedback-label files into the lake, exactly once; returns the files, labels accepted and quarantined."""
    results = ingest_labels(rt.ingest, rt.settings.landing_dir)
    return {
        "files": sum(not r.already_done for r in results),
        "accepted": sum(r.accepted for r in results),
        "quarantined": sum(r.quarantined for r in results),
    }


def ingest_and_record_labels(rt: Runtime) -> dict[str, int]:
    """Ingest new label files and audit it (the step the train, score and risk flows share)."""
    counts = ingest_label_files(rt)
    record(rt.audit, "label-ingest", "ingest_labels", counts, purpose="risk_control")
    return counts


@step
def train_models(rt: Runtime) -> TrainOutcome:
    """Train, register with its card, and promote if the gate passes."""
    truth = pseudonymised_truth(rt.settings.landing_dir, rt.ingest.pseudonymiser)
    return train_and_register(rt.risk, rt.plan, truth)


@step
def publish_card(outcome: TrainOutcome) -> None:
    """The model card as a Prefect artifact: metrics, and the plots inlined, so any UI shows them (no identifiers)."""
    create_markdown_artifact(
        key="model-card", markdown=card_markdown(outcome.card), description=f"Model card {outcome.version}"
    )


@flow(name="train")
def train_flow(data_dir: str | None = None, labels: bool = True) -> TrainOutcome | None:
    """Ingest new labels (unless ``labels`` is False: the calling flow did), train both scores, publish the
    card, audit the run. On a lake too short to train yet (a new install), it says why and trains nothing
    (None): the weekly deployment's run completes, and the pipeline trains the first model once it can."""
    rt = for_run(data_dir)  # a missing key stops the run before it trains
    if labels:
        ingest_and_record_labels(rt)
    why = not_trainable(rt.risk, rt.plan)
    if why is not None:
        get_run_logger().warning("nothing trained: %s", why)
        return None
    outcome = train_models(rt)
    publish_card(outcome)
    meta = outcome.metadata
    record(
        rt.audit,
        "train-flow",
        "train_models",
        {
            "transactions_held_out": int(meta["transaction"]["metrics"]["rows"]),
            "accounts_held_out": int(meta["account"]["metrics"]["rows"]),
            "promoted": int(outcome.promoted),
        },
        purpose="risk_control",
    )
    get_run_logger().info("model %s: %s", outcome.version, outcome.reason)
    return outcome
