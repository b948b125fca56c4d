"""Model performance over time, from an analyst's snapshot: precision and recall at the alert budget by week
as labels mature, and drift of the score distribution and of the reasons (the features that drive scores).

"At the budget" is the ``highest`` level: its threshold comes from the daily alert budget
(``DEVICERISK_RISK_ALERT_BUDGET``). A transaction is fraud as the contract's label semantics say
(:func:`devicerisk.risk.labels.fraud_marks`), counting only labels reported by the maturity's cut.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.analytics.interface import AnalystLake
from devicerisk.risk.labels import fraud_marks

_SCORED = """
SELECT date_trunc('week', event_date)::DATE AS week, transaction_id_pid AS subject, account_id_pid AS acct,
       epoch_us(event_time) AS t, score, level, reasons
FROM transaction_scores
"""
#: A reason's template: its numbers replaced, so "device seen on 14 accounts in 24 h" and "... 3 accounts ..."
#: count as one feature.
_TEMPLATE = r"\d+(\.\d+)?"


def _scored(lake: AnalystLake) -> pa.Table:
    return lake.sql(_SCORED + " ORDER BY t").to_arrow_table()


def weekly_performance(lake: AnalystLake, maturities: Sequence[int | None] = (0, 7, None)) -> pa.Table:
    """Per week of transactions and per label maturity (labels reported within that many days after the week
    ends; None: every label the snapshot holds): transactions, fraud, alerts (``highest``), precision, recall."""
    rows = _scored(lake)
    labels = lake.labels().to_arrow_table()
    out: dict[str, list[object]] = {k: [] for k in ("week", "maturity", "transactions", "fraud", "alerts")}
    out |= {"precision": [], "recall": []}
    for week in sorted(set(rows.column("week").to_pylist())):
        in_week = rows.filter(pc.equal(rows.column("week"), pa.scalar(week)))
        alert = pc.equal(in_week.column("level"), "highest").to_numpy(zero_copy_only=False)
        for days in maturities:
            until = None if days is None else datetime.combine(week, time(), UTC) + timedelta(days=7 + days)
            fraud = fraud_marks(in_week, labels, until).astype(bool)
            hits = int((fraud & alert).sum())
            out["week"].append(week)
            out["maturity"].append("all labels" if days is None else f"{days} d")
            out["transactions"].append(in_week.num_rows)
            out["fraud"].append(int(fraud.sum()))
            out["alerts"].append(int(alert.sum()))
            out["precision"].append(hits / alert.sum() if alert.sum() else None)
            out["recall"].append(hits / fraud.sum() if fraud.sum() else None)
    return pa.table(out)


def psi(reference: np.ndarray, current: np.ndarray, bins: int = 10) -> float:
    """Population stability index of ``current`` against ``reference``, on the reference's quantile bins."""
    edges = np.unique(np.quantile(reference, np.linspace(0, 1, bins + 1)))
    if len(edges) < 3:
        return 0.0
    ref = np.histogram(np.clip(reference, edges[0], edges[-1]), edges)[0] / len(reference)
    cur = np.histogram(np.clip(current, edges[0], edges[-1]), edges)[0] / max(len(current), 1)
    ref, cur = np.clip(ref, 1e-4, None), np.clip(cur, 1e-4, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


def score_drift(lake: AnalystLake) -> pa.Table:
    """Per week: the score's quantiles and mean, and its PSI against the first week's distribution."""
    rows = _scored(lake)
    weeks = sorted(set(rows.column("week").to_pylist()))
    scores = {w: rows.filter(pc.equal(rows.column("week"), pa.scalar(w))).column("score").to_numpy() for w in weeks}
    reference = scores[weeks[0]] if weeks else np.array([])
    return pa.table(
        {
            "week": weeks,
            "transactions": [len(scores[w]) for w in weeks],
            "mean": [float(scores[w].mean()) for w in weeks],
            "p50": [float(np.quantile(scores[w], 0.5)) for w in weeks],
            "p90": [float(np.quantile(scores[w], 0.9)) for w in weeks],
            "p99": [float(np.quantile(scores[w], 0.99)) for w in weeks],
            "psi_vs_first_week": [psi(reference, scores[w]) for w in weeks],
        }
    )


#: The reasons' templates, one row per reason of a scored transaction (``week``, ``level``, ``template``).
REASON_TEMPLATES = f"""
SELECT date_trunc('week', event_date)::DATE AS week, level,
       regexp_replace(unnest(reasons), '{_TEMPLATE}', '#', 'g') AS template
FROM transaction_scores
"""


def reason_drift(lake: AnalystLake, top: int = 8) -> pa.Table:
    """Per week, the share of scored transactions whose reasons name each of the ``top`` reasons overall (as
    templates: numbers replaced by ``#``): which features drive the scores, and how that moves."""
    query = f"""
        WITH r AS ({REASON_TEMPLATES}),
        best AS (SELECT template FROM r GROUP BY template ORDER BY count(*) DESC, template LIMIT {int(top)}),
        n AS (SELECT date_trunc('week', event_date)::DATE AS week, count(*) AS scored FROM transaction_scores
              GROUP BY ALL)
        SELECT r.week, r.template, count(*) / any_value(n.scored) AS share
        FROM r JOIN best USING (template) JOIN n USING (week)
        GROUP BY ALL ORDER BY r.week, share DESC
    """
    return lake.sql(query).to_arrow_table()
