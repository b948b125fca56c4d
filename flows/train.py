"""The train flow (weekly): both risk models on the lake, the model card, the promotion gate."""

from __future__ import annotations

from pathlib import Path

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_image_artifact, create_markdown_artifact
from prefect.cache_policies import NO_CACHE

from devicerisk.config import Settings
from devicerisk.governance.stores import audit_trail
from devicerisk.ingest.runtime import ingest_context
from devicerisk.risk.labels import ingest_labels
from devicerisk.risk.service import TrainOutcome, train_and_register
from devicerisk.risk.truth import pseudonymised_truth
from devicerisk.store import audit


def settings_of(data_dir: str | None) -> Settings:
    return Settings() if data_dir is None else Settings(data_dir=Path(data_dir))


@task(retries=2, retry_delay_seconds=2, cache_policy=NO_CACHE)
def ingest_label_files(settings: Settings, trail: audit.Trail) -> int:
    """New feedback-label files into the lake, exactly once; returns the labels accepted."""
    ctx = ingest_context(settings)
    results = ingest_labels(ctx, settings.landing_dir)
    accepted = sum(r.accepted for r in results)
    audit.append(trail, actor="label-ingest", role="pipeline", action="ingest_labels",
                 purpose="risk_control", counts={"files": sum(not r.already_done for r in results),
                                                 "accepted": accepted,
                                                 "quarantined": sum(r.quarantined for r in results)})  # fmt: skip
    return accepted


@task(cache_policy=NO_CACHE)
def train_models(settings: Settings) -> TrainOutcome:
    """Train, register with its card, and promote if the gate passes."""
    truth = pseudonymised_truth(settings.landing_dir, ingest_context(settings).pseudonymiser)
    return train_and_register(
        settings.lake_dir, settings.models_dir, settings.risk_alert_budget, settings.risk_label_gap_days,
        settings.risk_test_days, truth,
    )  # fmt: skip


@task(cache_policy=NO_CACHE)
def publish_card(settings: Settings, outcome: TrainOutcome) -> None:
    """The model card as Prefect artifacts: the Markdown and each plot (metrics only, no identifiers)."""
    create_markdown_artifact(key="model-card", markdown=outcome.card["card.md"].decode(),
                             description=f"Model card {outcome.version}")  # fmt: skip
    folder = settings.models_dir / outcome.version
    for name in sorted(n for n in outcome.card if n.endswith(".png")):
        create_image_artifact(image_url=(folder / name).resolve().as_uri(), key=name.removesuffix(".png").replace(
            "_", "-"), description=f"{name} of model {outcome.version}")  # fmt: skip


@task(cache_policy=NO_CACHE)
def audit_training(trail: audit.Trail, outcome: TrainOutcome) -> None:
    meta = outcome.metadata
    audit.append(trail, actor="train-flow", role="pipeline", action="train_models",
                 purpose="risk_control", counts={
                     "transactions_held_out": int(meta["transaction"]["metrics"]["rows"]),
                     "accounts_held_out": int(meta["account"]["metrics"]["rows"]),
                     "promoted": int(outcome.promoted)})  # fmt: skip


@flow(name="train")
def train_flow(data_dir: str | None = None) -> TrainOutcome:
    """Ingest new labels, train both scores, publish the card, audit the run."""
    settings = settings_of(data_dir)
    trail = audit_trail(settings)  # a missing audit key stops the run before it trains
    ingest_label_files(settings, trail)
    outcome = train_models(settings)
    publish_card(settings, outcome)
    audit_training(trail, outcome)
    get_run_logger().info("model %s: %s", outcome.version, outcome.reason)
    return outcome
