"""A score run that read the lake before an erasure never publishes the erased subject again (6.2.2).

The run computes scores, then an erasure completes, then the run commits: neither the lake's score tables nor the
serving snapshots may hold the subject afterwards, while everyone else's scores are committed as usual.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import requests
from devicerisk.governance.requests import RequestKind, Status
from devicerisk.governance.stores import stores_for
from devicerisk.risk import service
from devicerisk.risk.scoring import commit_transactions, plan_transactions, score_part
from devicerisk.risk.service import RiskStores, score_accounts
from devicerisk.store import scores, serving
from factories import champion, verified


@pytest.fixture
def scored_world(settings: Settings) -> tuple[world.World, Settings]:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    w = world.build(s)
    champion(s.models_dir)
    return w, s


def _accounts(table: pa.Table | None) -> set[str]:
    return set() if table is None else set(pc.unique(table.column("account_id_pid")).drop_null().to_pylist())


def _erase(s: Settings) -> None:
    row = requests.submit(stores_for(s), RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verified())
    assert row.status == Status.COMPLETED


def test_clause_6_2_2_transaction_scores_computed_before_an_erasure_are_not_committed(
    scored_world: tuple[world.World, Settings],
) -> None:
    w, s = scored_world
    risk = RiskStores.of(s)
    plan = plan_transactions(risk)
    assert plan is not None
    parts = [score_part(risk, plan.version, part) for part in plan.whole()]
    assert w.subject_pid in _accounts(pa.concat_tables(parts))  # the run scored the subject

    _erase(s)
    counts = commit_transactions(risk, plan, parts, "run-after-erasure")

    assert counts["transactions_scored"] > 0
    assert w.subject_pid not in _accounts(scores.read(s.lake_dir, scores.TRANSACTION_SCORES))
    published = _accounts(serving.read(s.serving_dir, serving.TRANSACTIONS))
    assert w.subject_pid not in published and w.neighbour_pid in published


def test_clause_6_2_2_account_scores_computed_before_an_erasure_are_not_committed(
    scored_world: tuple[world.World, Settings], monkeypatch: pytest.MonkeyPatch
) -> None:
    w, s = scored_world
    real = service.score_table
    seen: list[set[str]] = []

    def score_then_erase(*args: Any, **kwargs: Any) -> pa.Table:  # the erasure lands between scoring and commit
        table = real(*args, **kwargs)
        seen.append(_accounts(table))
        _erase(s)
        return table

    monkeypatch.setattr(service, "score_table", score_then_erase)
    counts = score_accounts(RiskStores.of(s))

    assert w.subject_pid in seen[0]
    assert counts["accounts_scored"] == 2
    assert _accounts(scores.read(s.lake_dir, scores.ACCOUNT_SCORES)) == {w.neighbour_pid, w.stranger_pid}
    assert _accounts(serving.read(s.serving_dir, serving.ACCOUNTS)) == {w.neighbour_pid, w.stranger_pid}
    assert w.subject_pid not in _accounts(serving.read(s.serving_dir, serving.DEVICES))
