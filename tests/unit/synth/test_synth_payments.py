"""The payment scenarios and their look-alikes, and the fraud team's labels under the contract's semantics."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from devicerisk.synth import SynthConfig, generate
from devicerisk.synth.payments import LARGE
from devicerisk.synth.world import COUNTRIES

PAYMENTS = {"compromised_merchant": 1.0, "compromised_customer": 1.0, "large_amount": 1.0, "push_payment_scam": 1.0}
CONFIG = SynthConfig(
    accounts=1500,
    days=14,
    events_per_batch=50_000,
    seed=5,
    gzip=False,
    fraud_rate=0.04,
    scenario_mix={**PAYMENTS, "account_takeover": 1.0, "emulator": 1.0},
)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    out = tmp_path_factory.mktemp("payments")
    result = generate(out, CONFIG)
    txns = [
        e for path in result.batches for line in path.open() if (e := json.loads(line))["event_type"] == "transaction"
    ]
    truth = [json.loads(line) for line in result.truth_file.open()]
    labels = [json.loads(line) for path in result.label_files for line in path.open()]
    return {
        "out": out,
        "txns": txns,
        "fraud": {t["subject_id"]: t for t in truth if t["subject_type"] == "transaction"},
        "accounts": {t["subject_id"]: t for t in truth if t["subject_type"] == "account"},
        "labels": labels,
    }


def _time(e: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(e["event_time"])


def _of(world: dict[str, Any], scenario: str) -> list[dict[str, Any]]:
    return [
        e for e in world["txns"] if world["fraud"].get(e["payload"]["transaction_id"], {}).get("scenario") == scenario
    ]


def test_a_compromised_merchant_takes_only_fraud_while_hijacked(world: dict[str, Any]) -> None:
    frauds = _of(world, "compromised_merchant")
    by_merchant: dict[str, list[datetime]] = defaultdict(list)
    for e in frauds:
        by_merchant[e["payload"]["counterparty"]].append(_time(e))
    assert by_merchant and all(len(t) >= 3 for t in by_merchant.values())
    for merchant, times in by_merchant.items():
        honest = [
            e
            for e in world["txns"]
            if e["payload"]["counterparty"] == merchant and e["payload"]["transaction_id"] not in world["fraud"]
        ]
        assert honest, "the shop had honest customers"
        assert not [e for e in honest if min(times) <= _time(e) <= max(times)]
    payers = {e["account_id"] for e in frauds}
    assert len(payers) >= 6 and all(world["accounts"][a]["victim_of"] == "compromised_merchant" for a in payers)


def test_a_compromised_customer_pays_larger_beside_their_honest_payments(world: dict[str, Any]) -> None:
    frauds = _of(world, "compromised_customer")
    victims = {e["account_id"] for e in frauds}
    assert victims
    ratios, mixed = [], 0
    for victim in victims:
        bad = [e for e in frauds if e["account_id"] == victim]
        good = [
            e
            for e in world["txns"]
            if e["account_id"] == victim and e["payload"]["transaction_id"] not in world["fraud"]
        ]
        first, last = min(map(_time, bad)), max(map(_time, bad))
        assert last - first <= timedelta(days=14)
        mixed += any(first <= _time(e) <= last for e in good)  # the victim's own activity goes on
        if good:
            mean_bad = sum(e["payload"]["amount"] for e in bad) / len(bad)
            ratios.append(mean_bad / (sum(e["payload"]["amount"] for e in good) / len(good)))
    assert mixed >= 1
    assert sorted(ratios)[len(ratios) // 2] > 1.5


def test_large_amounts_are_above_the_threshold_and_so_are_some_honest_ones(world: dict[str, Any]) -> None:
    def over(e: dict[str, Any]) -> bool:
        country = world["accounts"][e["account_id"]]["country"]
        return e["payload"]["amount"] >= LARGE * COUNTRIES[country].amount_median * 0.99

    frauds = _of(world, "large_amount")
    assert frauds and all(over(e) for e in frauds)
    honest_big = [
        e
        for e in world["txns"]
        if e["payload"]["transaction_id"] not in world["fraud"]
        and "big_purchase" in world["accounts"][e["account_id"]]["tags"]
        and over(e)
    ]
    assert honest_big


def test_a_mule_collects_from_several_victims_then_moves_the_money(world: dict[str, Any]) -> None:
    frauds = _of(world, "push_payment_scam")
    mules = {a for a, t in world["accounts"].items() if t["scenario"] == "push_payment_scam"}
    assert mules and all(world["accounts"][m]["fraud"] for m in mules)
    collected: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for e in frauds:
        if e["account_id"] not in mules:
            collected[e["payload"]["counterparty"]].append(e)
    assert collected
    for payments in collected.values():
        assert all(e["payload"]["channel"] == "bank_transfer" for e in payments)
        assert all(world["accounts"][e["account_id"]]["victim_of"] == "push_payment_scam" for e in payments)
        times = sorted(map(_time, payments))
        assert times[-1] - times[0] <= timedelta(days=3)
    assert max(len({e["account_id"] for e in p}) for p in collected.values()) >= 2
    assert any(e["account_id"] in mules for e in frauds), "a mule's own payments are fraud"


def test_honest_lookalikes_of_the_payment_scenarios(world: dict[str, Any]) -> None:
    payers: dict[str, set[str]] = defaultdict(set)
    for e in world["txns"]:
        payers[e["payload"]["counterparty"]].add(e["account_id"])
    rent = {cp: a for cp, a in payers.items() if cp.startswith("rent_")}
    assert rent and max(len(a) for a in rent.values()) >= 10  # many accounts pay one landlord...
    rent_txns = [e for e in world["txns"] if e["payload"]["counterparty"] in rent]
    assert all(e["payload"]["channel"] == "bank_transfer" for e in rent_txns)  # ...large sums by bank transfer
    assert not [e for e in rent_txns if e["payload"]["transaction_id"] in world["fraud"]]
    merchants = sorted((len(a) for cp, a in payers.items() if cp.startswith("mch_")), reverse=True)
    assert merchants[0] > 5 * merchants[len(merchants) // 2]  # popular merchants


def test_labels_follow_the_contract_semantics(world: dict[str, Any]) -> None:
    accounts, fraud = world["accounts"], world["fraud"]
    account_labels: dict[str, dict[str, Any]] = {}  # the earliest per account (a later one may repeat it)
    for lab in sorted(world["labels"], key=lambda lab: lab["reported_at"], reverse=True):
        if lab["subject_type"] == "account":
            account_labels[lab["subject_id"]] = lab
    txn_labels = [lab for lab in world["labels"] if lab["subject_type"] == "transaction" and lab["label"] == "fraud"]
    owner = {t: f["account_id"] for t, f in fraud.items()}
    assert all(lab["subject_id"] in fraud for lab in txn_labels), "a fraud label names a fraud"
    for acct, a in accounts.items():
        lab = account_labels.get(acct)
        if a["victim_of"] or (a["scenario"] == "account_takeover" and a["fraud_until"]):
            # a victim (or an owner who got the account back) is never reported as an account
            assert lab is None or lab["label"] == "legitimate"
        elif a["scenario"] is not None and lab is not None:
            assert lab["label"] == "fraud"
            assert lab.get("fraud_from") == (a["fraud_since"] if a["scenario"] == "account_takeover" else None)
    # a fraudster's reported payment brings a report on the account, no later than the payment's
    for lab in txn_labels:
        a = accounts[owner[lab["subject_id"]]]
        if a["scenario"] is not None and not a["fraud_until"]:
            acct_lab = account_labels[owner[lab["subject_id"]]]
            assert acct_lab["reported_at"] <= lab["reported_at"]
    victims_reported = [lab for lab in txn_labels if accounts[owner[lab["subject_id"]]]["victim_of"]]
    assert victims_reported, "victims dispute their fraudulent payments"


def test_truth_follows_the_semantics_of_an_account_in_fraudulent_hands(world: dict[str, Any]) -> None:
    """Every payment of a fake account, or of a taken-over account the owner never got back, from
    ``fraud_since`` on is fraud in the truth; a recovered takeover's owner's payments are not."""
    accounts, fraud = world["accounts"], world["fraud"]
    held = {
        a: datetime.fromisoformat(t["fraud_since"])
        for a, t in accounts.items()
        if t["fraud"] and t["fraud_since"] and not t["fraud_until"]
    }
    checked = [e for e in world["txns"] if e["account_id"] in held and _time(e) >= held[e["account_id"]]]
    assert checked and all(e["payload"]["transaction_id"] in fraud for e in checked)
    recovered = {a: datetime.fromisoformat(t["fraud_until"]) for a, t in accounts.items() if t["fraud_until"]}
    after = [e for e in world["txns"] if e["account_id"] in recovered and _time(e) > recovered[e["account_id"]]]
    assert after and not [e for e in after if e["payload"]["transaction_id"] in fraud]


def test_payment_scenarios_are_deterministic(tmp_path: Path) -> None:
    config = SynthConfig(accounts=300, days=3, seed=9, gzip=False, scenario_mix=PAYMENTS, fraud_rate=0.1)
    first = generate(tmp_path / "a", config)
    second = generate(tmp_path / "b", config)
    assert first.truth_file.read_bytes() == second.truth_file.read_bytes()
    assert [p.read_bytes() for p in first.batches] == [p.read_bytes() for p in second.batches]
    scenarios = {json.loads(line)["scenario"] for line in first.truth_file.open()}
    assert scenarios - {None} <= set(PAYMENTS) and len(scenarios - {None}) >= 3
