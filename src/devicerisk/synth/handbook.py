"""The card-transaction simulator of the fraud-detection handbook, from its published description.

*Reproducible Machine Learning for Credit Card Fraud Detection - Practical Handbook* (Le Borgne,
Siblini, Lebichot, Bontempi; Université Libre de Bruxelles), chapter 3, describes a simulator and a
baseline that many fraud teams know. This module follows that description in its own vectorised code:

- customers at uniform points of a 100 × 100 square, each with a mean amount uniform in [5, 100] (the
  standard deviation half of it) and a mean number of transactions a day uniform in [0, 4];
- terminals at uniform points; a customer pays at the terminals within a radius of 5, chosen uniformly;
- each day a Poisson number of transactions per customer, at a time of day drawn around noon
  (normal, standard deviation 20,000 s; draws outside the day are dropped), amounts normal (a negative
  draw is redrawn uniform in [0, 2 × mean]);
- three fraud scenarios: (1) every amount above 220; (2) each day two terminals are compromised and
  all their transactions in the next 28 days are fraud; (3) each day three customers are compromised
  and a third of their transactions in the next 14 days are fraud, their amounts multiplied by 5.

The handbook's engineered features (``baseline_features``) are those of its baseline models: the
amount, weekend and night flags, the customer's transaction count and mean amount over 1, 7 and 30 days
(the current transaction included), and each terminal's transaction count and fraud share over 1, 7 and
30 days ending 7 days before the transaction (the delay after which its frauds are known).

``write_landing`` turns a simulation into this project's inputs: customers are accounts, terminals are
counterparties, and each fraud is reported as a transaction label 1 to 7 days later.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import orjson
import pandas as pd

from devicerisk.synth.writer import AtomicFile

DAY_S = 86_400
SCENARIOS: dict[int, str] = {1: "amount_over_threshold", 2: "compromised_terminal", 3: "compromised_customer"}


@dataclass(frozen=True, slots=True)
class HandbookConfig:
    """The handbook's parameters (its defaults: 5,000 customers, 10,000 terminals, 183 days from 2018-04-01)."""

    customers: int = 5_000
    terminals: int = 10_000
    days: int = 183
    start: datetime = datetime(2018, 4, 1, tzinfo=UTC)
    radius: float = 5.0
    amount_threshold: float = 220.0
    terminals_per_day: int = 2
    terminal_days: int = 28
    customers_per_day: int = 3
    customer_days: int = 14
    seed: int = 0


def simulate(config: HandbookConfig) -> pd.DataFrame:
    """Transactions in time order: ``tx_id, time_s, day, customer, terminal, amount, fraud, scenario``.

    ``time_s`` counts seconds from ``config.start``; ``scenario`` is 0 for honest transactions, else the
    last scenario that made it fraud (1, 2, 3 in that order, as in the handbook).
    """
    rng = np.random.default_rng(config.seed)
    n_c, n_t = config.customers, config.terminals
    cust_xy = rng.uniform(0, 100, size=(n_c, 2))
    mean_amount = rng.uniform(5, 100, size=n_c)
    per_day = rng.uniform(0, 4, size=n_c)
    term_xy = rng.uniform(0, 100, size=(n_t, 2))
    reach = _terminals_within(cust_xy, term_xy, config.radius)

    counts = rng.poisson(np.broadcast_to(per_day, (config.days, n_c)))  # (day, customer)
    day = np.repeat(np.arange(config.days), counts.sum(axis=1))
    customer = np.concatenate([np.repeat(np.arange(n_c), row) for row in counts])
    tod = rng.normal(DAY_S / 2, 20_000, size=customer.size).astype(np.int64)
    amount = rng.normal(mean_amount[customer], mean_amount[customer] / 2)
    negative = amount < 0
    amount[negative] = rng.uniform(0, 2 * mean_amount[customer[negative]])
    terminal = np.full(customer.size, -1, dtype=np.int64)
    sizes = np.array([len(r) for r in reach])[customer]
    has = sizes > 0
    pick = (rng.random(customer.size) * np.maximum(sizes, 1)).astype(np.int64)
    terminal[has] = [reach[c][i] for c, i in zip(customer[has], pick[has], strict=True)]
    keep = (tod > 0) & (tod < DAY_S) & has
    tx = pd.DataFrame(
        {
            "time_s": day[keep] * DAY_S + tod[keep],
            "day": day[keep],
            "customer": customer[keep],
            "terminal": terminal[keep],
            "amount": np.round(amount[keep], 2),
        }
    )
    tx = tx.sort_values(["time_s", "customer"], kind="stable").reset_index(drop=True)
    tx.insert(0, "tx_id", np.arange(len(tx)))
    _add_frauds(tx, config, rng)
    return tx


def _terminals_within(cust_xy: np.ndarray, term_xy: np.ndarray, radius: float) -> list[np.ndarray]:
    """Each customer's terminals within ``radius``, in chunks so the distance matrix stays small."""
    out: list[np.ndarray] = []
    for lo in range(0, len(cust_xy), 500):
        d2 = ((cust_xy[lo : lo + 500, None, :] - term_xy[None, :, :]) ** 2).sum(axis=2)
        out.extend(np.flatnonzero(row) for row in d2 < radius * radius)
    return out


def _add_frauds(tx: pd.DataFrame, config: HandbookConfig, rng: np.random.Generator) -> None:
    fraud = np.zeros(len(tx), dtype=bool)
    scenario = np.zeros(len(tx), dtype=np.int8)
    over = tx["amount"].to_numpy() > config.amount_threshold
    fraud[over], scenario[over] = True, 1
    days, terms, custs = tx["day"].to_numpy(), tx["terminal"].to_numpy(), tx["customer"].to_numpy()
    for d in range(config.days):
        hit = rng.choice(config.terminals, size=config.terminals_per_day, replace=False)
        mask = (days >= d) & (days < d + config.terminal_days) & np.isin(terms, hit)
        fraud[mask], scenario[mask] = True, 2
    amount = tx["amount"].to_numpy().copy()
    for d in range(config.days):
        hit = rng.choice(config.customers, size=config.customers_per_day, replace=False)
        idx = np.flatnonzero((days >= d) & (days < d + config.customer_days) & np.isin(custs, hit))
        chosen = rng.choice(idx, size=len(idx) // 3, replace=False) if len(idx) else idx
        amount[chosen] *= 5
        fraud[chosen], scenario[chosen] = True, 3
    tx["amount"] = np.round(amount, 2)
    tx["fraud"], tx["scenario"] = fraud, scenario


def baseline_features(tx: pd.DataFrame, delay_days: int = 7, windows: tuple[int, ...] = (1, 7, 30)) -> pd.DataFrame:
    """The handbook's 15 engineered features, one row per transaction in ``tx``'s order.

    Customer windows end at (and include) the transaction; terminal windows end ``delay_days`` before it,
    the delay after which the handbook assumes frauds are known.
    """
    t = pd.to_datetime(tx["time_s"], unit="s")
    out = pd.DataFrame(index=tx.index)
    out["amount"] = tx["amount"]
    out["weekend"] = (t.dt.day_of_week >= 5).astype(int)
    out["night"] = (t.dt.hour <= 6).astype(int)
    frame = pd.DataFrame(
        {
            "t": t,
            "amount": tx["amount"],
            "fraud": tx["fraud"].astype(float),
            "customer": tx["customer"],
            "terminal": tx["terminal"],
        }
    )
    by_c = frame.sort_values(["customer", "t"], kind="stable").set_index("t").groupby("customer", sort=False)
    for w in windows:
        roll = by_c["amount"].rolling(f"{w}D")
        n, s = roll.count(), roll.sum()
        idx = frame.sort_values(["customer", "t"], kind="stable").index
        out.loc[idx, f"customer_nb_tx_{w}d"] = n.to_numpy()
        out.loc[idx, f"customer_avg_amount_{w}d"] = (s / n).to_numpy()
    order = frame.sort_values(["terminal", "t"], kind="stable").index
    by_t = frame.loc[order].set_index("t").groupby("terminal", sort=False)["fraud"]
    delayed_n, delayed_f = by_t.rolling(f"{delay_days}D").count(), by_t.rolling(f"{delay_days}D").sum()
    for w in windows:
        n = by_t.rolling(f"{delay_days + w}D").count() - delayed_n
        f = by_t.rolling(f"{delay_days + w}D").sum() - delayed_f
        out.loc[order, f"terminal_nb_tx_{w}d"] = n.to_numpy()
        out.loc[order, f"terminal_risk_{w}d"] = np.nan_to_num((f / n.where(n > 0)).to_numpy())
    return out


def write_landing(
    tx: pd.DataFrame,
    config: HandbookConfig,
    landing_dir: Path,
    since_s: int = 0,
    until_s: int | None = None,
    batch_days: int = 7,
    seed: int = 0,
) -> dict[str, int]:
    """Write the simulation as contract telemetry, fraud labels and ground truth under ``landing_dir``.

    Transactions in ``[since_s, until_s)`` (seconds from the start; ``until_s`` None: to the end) are written
    in batches of ``batch_days``; each fraud of the whole simulation is reported as a transaction label 1 to
    7 days after it, and the labels reported in the same interval are written. Calling this for consecutive
    intervals delivers every event and label once, as a live feed would.
    """
    end = np.inf if until_s is None else until_s
    times = tx["time_s"].to_numpy()
    part = tx[(times >= since_s) & (times < end)]
    for sub in ("telemetry", "labels", "truth"):
        (landing_dir / sub).mkdir(parents=True, exist_ok=True)
    start = config.start
    week = (part["day"].to_numpy() // batch_days).astype(int)
    for b in np.unique(week):
        out = AtomicFile(landing_dir / "telemetry" / f"batch-handbook-{b:04d}-{since_s}.ndjson")
        out.write(b"".join(_event(r, start) for r in part[week == b].itertuples(index=False)))
        out.close()
    fraud = tx[tx["fraud"]]
    delay = np.random.default_rng(seed + 7919).uniform(1, 7, size=len(fraud)) * DAY_S  # the same for every call
    reported = fraud["time_s"].to_numpy() + delay
    due = (reported >= since_s) & (reported < end)
    labels = AtomicFile(landing_dir / "labels" / f"labels-handbook-{since_s}.ndjson")
    for tx_id, when in zip(fraud["tx_id"].to_numpy()[due], reported[due], strict=True):
        labels.write(
            orjson.dumps(
                {
                    "label_id": f"hb-label-{tx_id}",
                    "subject_type": "transaction",
                    "subject_id": f"hb-tx-{tx_id}",
                    "label": "fraud",
                    "fraud_type": "card_fraud",
                    "reported_at": _iso(start, float(when)),
                }
            )
            + b"\n"
        )
    labels.close()
    truth = AtomicFile(landing_dir / "truth" / "scenarios.ndjson")  # the truth of this interval's transactions
    for tx_id, is_fraud, scen in zip(part["tx_id"], part["fraud"], part["scenario"], strict=True):
        row = {
            "subject_type": "transaction",
            "subject_id": f"hb-tx-{tx_id}",
            "fraud": bool(is_fraud),
            "scenario": SCENARIOS.get(int(scen)),
        }
        truth.write(orjson.dumps(row) + b"\n")
    truth.close()
    return {"transactions": len(part), "labels": int(due.sum()), "frauds": int(part["fraud"].sum())}


def _iso(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=round(seconds))).isoformat()


def _event(row: tuple, start: datetime) -> bytes:
    """One transaction as a contract event; each customer keeps one device and one network."""
    tx_id, time_s, _day, customer, terminal, amount, *_ = row
    return (
        orjson.dumps(
            {
                "schema_version": 1,
                "event_id": f"hb-ev-{tx_id}",
                "event_type": "transaction",
                "event_time": _iso(start, float(time_s)),
                "account_id": f"hb-cust-{customer}",
                "app": {"platform": "android", "version": "5.0.0"},
                "device": {"android_id": f"{0x5A00_0000_0000_0000 + customer:016x}"},
                "network": {"ip": f"81.{customer // 65536 % 256}.{customer // 256 % 256}.{customer % 256 + 1}"},
                "payload": {
                    "transaction_id": f"hb-tx-{tx_id}",
                    "amount": float(amount),
                    "currency": "EUR",
                    "channel": "card",
                    "status": "success",
                    "counterparty": f"hb-term-{terminal}",
                },
            }
        )
        + b"\n"
    )
