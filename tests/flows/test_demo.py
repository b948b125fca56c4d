"""`devicerisk demo` as a newcomer runs it: the pipeline on its own synthetic data, both scores supervised."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from devicerisk.cli import app
from devicerisk.config import Settings
from devicerisk.store import registry, scores


def test_the_demo_trains_supervised_scores_and_shows_counts_that_match_the_lake(
    prefect_db: Path, env_settings: Settings
) -> None:
    s = env_settings
    result = CliRunner().invoke(app, ["demo", "--data-dir", str(s.data_dir)])  # the defaults `make demo` uses
    assert result.exit_code == 0, result.output
    champion = registry.champion(s.models_dir)
    assert champion is not None
    meta = registry.metadata(s.models_dir, champion)
    assert (meta["transaction"]["kind"], meta["account"]["kind"]) == ("supervised", "supervised"), meta["notes"]
    assert "top-risk accounts" in result.output and "supervised" in result.output
    scored = scores.read(s.lake_dir, scores.TRANSACTION_SCORES)
    assert scored is not None and scored.num_rows > 1000
