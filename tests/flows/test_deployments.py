"""prefect.yaml: every deployment points at a flow that exists, with a schedule."""

from __future__ import annotations

from pathlib import Path

import yaml
from prefect import Flow
from prefect.flows import load_flow_from_entrypoint

ROOT = Path(__file__).resolve().parents[2]


def test_every_deployment_entrypoint_is_a_flow() -> None:
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    assert spec["deployments"]
    for deployment in spec["deployments"]:  # loaded as a worker loads them: by file path from the project folder
        flow = load_flow_from_entrypoint(str(ROOT / deployment["entrypoint"]))
        assert isinstance(flow, Flow), deployment["name"]
        assert deployment["schedules"], deployment["name"]
        assert deployment["parameters"] == {}, "keys and settings come from the environment, not parameters"


def test_clause_5_1_2_the_purge_runs_daily_and_the_hourly_pipeline_does_not_purge() -> None:
    spec = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    from devicerisk.flows.pipeline import pipeline_flow

    hourly = spec["pipeline-hourly"]
    assert hourly["entrypoint"] == "flows/pipeline.py:pipeline_flow"
    assert pipeline_flow.parameters.properties["purge"]["default"] is False and "purge" not in hourly["parameters"]
    daily = spec["retention-daily"]
    assert daily["entrypoint"] == "flows/retention.py:retention_flow"
    assert [s["cron"].split()[2:] for s in daily["schedules"]] == [["*", "*", "*"]]  # once a day
