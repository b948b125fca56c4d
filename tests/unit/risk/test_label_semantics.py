"""What a fraud label marks (the contract's label semantics), for training, evaluation and the card alike."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import orjson
import pyarrow as pa

from devicerisk.config import Settings
from devicerisk.ingest.pipeline import IngestContext
from devicerisk.risk.labels import LABEL_SCHEMA, fraud_marks, ingest_labels, read_labels
from devicerisk.risk.training import fraud_targets
from devicerisk.store import lake

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def _us(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def _labels(*rows: dict[str, object]) -> pa.Table:
    full = [
        {
            "label_id": f"l{i}",
            "account_id_pid": None,
            "fraud_type": None,
            "fraud_from": None,
            "event_date": None,
            "batch_id": "b",
            "key_id": "k",
        }
        | r
        for i, r in enumerate(rows)
    ]
    return pa.Table.from_pylist(full, schema=LABEL_SCHEMA)


def _txns() -> pa.Table:
    """Account A's transactions on days 1, 2 and 3; account B's on day 2."""
    return pa.table(
        {
            "subject": ["a1", "a2", "a3", "b1"],
            "acct": ["A", "A", "A", "B"],
            "t": [_us(T0 + timedelta(days=d)) for d in (1, 2, 3, 2)],
        }
    )


def _report(subject_type: str, subject: str, label: str = "fraud", days: float = 10, **extra: object) -> dict:
    return {
        "subject_type": subject_type,
        "subject_id_pid": subject,
        "label": label,
        "reported_at": T0 + timedelta(days=days),
    } | extra


def test_a_transaction_label_marks_that_transaction_only() -> None:
    marks = fraud_marks(_txns(), _labels(_report("transaction", "a2", account_id_pid="A")), None)
    assert marks.tolist() == [0, 1, 0, 0]  # not the victim's honest a1 and a3, not the account


def test_an_account_label_without_fraud_from_marks_every_transaction_of_the_account() -> None:
    marks = fraud_marks(_txns(), _labels(_report("account", "A", fraud_type="fake_account")), None)
    assert marks.tolist() == [1, 1, 1, 0]


def test_an_account_label_marks_transactions_from_fraud_from_on() -> None:
    takeover = _report("account", "A", fraud_type="account_takeover", fraud_from=T0 + timedelta(days=2))
    assert fraud_marks(_txns(), _labels(takeover), None).tolist() == [0, 1, 1, 0]  # fraud_from itself included
    later = _report("account", "A", fraud_from=T0 + timedelta(days=2, microseconds=1))
    assert fraud_marks(_txns(), _labels(later), None).tolist() == [0, 0, 1, 0]


def test_only_fraud_reported_by_the_cut_marks_and_legitimate_labels_mark_nothing() -> None:
    labels = _labels(
        _report("transaction", "a1", days=5),
        _report("transaction", "a3", days=6),
        _report("account", "B", label="legitimate"),
    )
    assert fraud_marks(_txns(), labels, T0 + timedelta(days=5)).tolist() == [1, 0, 0, 0]  # a report at the cut counts
    assert fraud_marks(_txns(), labels, None).tolist() == [1, 0, 1, 0]


def test_account_probes_are_marked_by_account_labels_only() -> None:
    probes = pa.table({"qid": ["A", "B"], "acct": ["A", "B"], "t": [_us(T0 + timedelta(days=4))] * 2})
    labels = _labels(
        _report("transaction", "b1", account_id_pid="B"), _report("account", "A", fraud_from=T0 + timedelta(days=3))
    )
    assert fraud_targets(probes, labels, "qid", None).tolist() == [1, 0]  # B's reported transaction stays its own
    early = pa.table({"qid": ["A"], "acct": ["A"], "t": [_us(T0 + timedelta(days=2))]})
    assert fraud_targets(early, labels, "qid", None).tolist() == [0]  # not yet in fraudulent hands


def test_fraud_from_is_ingested_and_lakes_without_it_still_read(settings: Settings, ctx: IngestContext) -> None:
    old = _labels(_report("account", "X"), _report("transaction", "y")).drop_columns(["fraud_from"])
    lake.append(settings.lake_dir, lake.LABELS, old, "old-batch", {})  # a labels table written before fraud_from
    assert read_labels(settings.lake_dir).column("fraud_from").null_count == 2
    (settings.landing_dir / "labels").mkdir(parents=True)
    (settings.landing_dir / "labels" / "labels-00000.ndjson").write_bytes(
        orjson.dumps(
            {
                "label_id": "n1",
                "subject_type": "account",
                "subject_id": "1234567890",
                "label": "fraud",
                "fraud_type": "account_takeover",
                "reported_at": "2026-11-05T00:00:00+00:00",
                "fraud_from": "2026-11-02T08:00:00+08:00",
            }
        )
        + b"\n"
    )
    assert [r.accepted for r in ingest_labels(ctx, settings.landing_dir)] == [1]
    table = read_labels(settings.lake_dir)
    assert table.num_rows == 3
    new = table.filter(pa.compute.equal(table.column("label_id"), "n1")).to_pylist()[0]
    assert new["fraud_from"] == datetime(2026, 11, 2, tzinfo=UTC)


def test_rows_in_the_label_delay_gap_count_as_legitimate_by_their_maturity() -> None:
    from devicerisk.risk.training import Split, maturity_weights

    split = Split(T0, T0 + timedelta(days=10), T0 + timedelta(days=14), T0 + timedelta(days=16), label_delay_days=4.0)
    at = [T0 + timedelta(days=d) for d in (9.9, 10, 12, 13, 14, 15)]
    weights = maturity_weights(np.array([_us(a) for a in at]), split)
    # mature training rows and test rows are not weighted here; the gap's rows by age at the cut over the delay
    assert weights.tolist() == [0.0, 1.0, 0.5, 0.25, 0.0, 0.0]
