"""prefect.yaml: every deployment points at a flow that exists, with a schedule."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_entrypoint_is_a_flow() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:
        path, name = deployment["entrypoint"].split(":")
        module = importlib.import_module(path.removesuffix(".py").replace("/", "."))
        assert isinstance(getattr(module, name), Flow), deployment["name"]
        assert deployment["schedules"], deployment["name"]
        assert deployment["parameters"] == {}, "keys and settings come from the environment, not parameters"


def test_clause_5_1_2_the_purge_runs_daily_and_the_hourly_pipeline_does_not_purge() -> None:
    spec = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    from flows.pipeline import pipeline_flow

    hourly = spec["pipeline-hourly"]
    assert hourly["entrypoint"] == "flows/pipeline.py:pipeline_flow"
    assert pipeline_flow.parameters.properties["purge"]["default"] is False and "purge" not in hourly["parameters"]
    daily = spec["retention-daily"]
    assert daily["entrypoint"] == "flows/retention.py:retention_flow"
    assert [s["cron"].split()[2:] for s in daily["schedules"]] == [["*", "*", "*"]]  # once a day
