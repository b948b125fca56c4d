"""Purpose limitation and purpose change (2.8): the contract's register of purposes, reads that name one, the
audit of each read's purpose, and a new unrelated purpose that reads only accounts whose consent covers it."""

from __future__ import annotations

from dataclasses import replace

import duckdb
import pytest

from devicerisk.analytics import open_lake
from devicerisk.config import Settings
from devicerisk.contract import purposes
from devicerisk.contract.fields import EVENT_TYPES
from devicerisk.contract.purposes import Basis, Purpose, UnregisteredPurposeError
from devicerisk.governance.stores import audit_trail
from devicerisk.store import audit, warehouse
from factories import synth_lake


@pytest.fixture
def lake(env_settings: Settings) -> Settings:
    """Three days of 60 synthetic accounts, ingested (their consent events too)."""
    synth_lake(env_settings)
    return env_settings


def _opened(settings: Settings) -> list[dict[str, object]]:
    return [r for r in audit.records(settings.audit_dir) if r["action"] == "analytics.open_lake"]


def test_clause_2_8_the_contract_registers_each_purpose_its_basis_and_the_event_types_serving_it() -> None:
    assert purposes.problems() == []
    assert purposes.processing() == ("account_management", "risk_control")
    for e in EVENT_TYPES:  # every event type serves its contract purpose, an original one
        owner = purposes.require(e.purpose)
        assert owner.basis is Basis.ORIGINAL and e.name in owner.event_types
    broken = (
        *purposes.PURPOSES,
        Purpose("offers", "Offers", "2.8", Basis.RELATED),  # related to nothing
        Purpose("ads", "Ads", "2.8", Basis.CONSENT, frozenset({"telemetry"})),  # no such event type
    )
    assert [p.split(":")[0] for p in purposes.problems(broken)] == ["ads", "offers"]
    with pytest.raises(UnregisteredPurposeError, match="not registered in the contract"):
        purposes.require("marketing")


def test_clause_2_8_a_read_for_an_unregistered_purpose_fails_and_each_read_is_audited_with_its_purpose(
    lake: Settings,
) -> None:
    with pytest.raises(UnregisteredPurposeError, match="'marketing' is not registered"):
        open_lake(lake.data_dir, purpose="marketing")
    with pytest.raises(UnregisteredPurposeError):  # nor can any reader record a read for it
        audit.append(audit_trail(lake), actor="a", role="analyst", action="read", purpose="marketing")
    assert _opened(lake) == []
    with open_lake(lake.data_dir, purpose="account_management", actor="ann") as narrow:
        types = {t for (t,) in narrow.sql("SELECT DISTINCT event_type FROM events").fetchall()}
    with open_lake(lake.data_dir, purpose="risk_control", actor="bob") as wide:
        all_types = {t for (t,) in wide.sql("SELECT DISTINCT event_type FROM events").fetchall()}
    assert types == {"account"}  # account management reads only the event type that serves it
    assert {"account", "transaction", "device_info"} <= all_types <= {e.name for e in EVENT_TYPES}  # risk reads all
    opened = _opened(lake)
    assert [(r["actor"], r["role"], r["purpose"]) for r in opened] == [
        ("ann", "analyst", "account_management"),
        ("bob", "analyst", "risk_control"),
    ]
    assert audit.verify(audit_trail(lake)) == []


def test_clause_2_8_a_new_unrelated_purpose_reads_only_the_accounts_whose_consent_covers_it(
    lake: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A contract change adds two purposes: ``marketing``, not related to an original purpose (the generated
    accounts grant or refuse it in consent events), and ``fraud_research``, related to risk control."""
    marketing = Purpose("marketing", "Offers by e-mail", "2.8", Basis.CONSENT, frozenset({"transaction"}))
    research = replace(marketing, name="fraud_research", basis=Basis.RELATED, related_to="risk_control")
    monkeypatch.setattr(purposes, "PURPOSES", (*purposes.PURPOSES, marketing, research))
    assert purposes.problems() == [] and marketing.needs_consent and not research.needs_consent

    con = duckdb.connect()
    con.register("decisions", warehouse.consent_state(lake.warehouse_path)["consent_decisions"])
    latest = con.sql(
        """SELECT account_pid, arg_max(granted, decided_at) AS granted FROM decisions
           WHERE purpose = 'marketing' GROUP BY account_pid"""
    ).fetchall()
    granted = {a for a, g in latest if g}
    refused = {a for a, g in latest if not g}
    assert granted and refused  # the generated accounts decided both ways

    def accounts(purpose: str) -> set[str]:
        with open_lake(lake.data_dir, purpose=purpose) as snap:
            rows = snap.sql("SELECT DISTINCT event_type, account_id_pid FROM events").fetchall()
        assert {t for t, _ in rows} == {"transaction"}  # the event types the purpose registered
        return {a for _, a in rows}

    with open_lake(lake.data_dir, purpose="risk_control") as snap:
        found = snap.sql("SELECT DISTINCT account_id_pid FROM events WHERE event_type = 'transaction'").fetchall()
    paying = {a for (a,) in found}
    assert paying & refused  # payers who refused: a read without the consent filter would show them
    shown = accounts("marketing")
    assert shown and shown <= granted and not shown & refused
    assert shown == paying & granted  # every consenting payer, and no one else
    assert accounts("fraud_research") == paying  # a related purpose needs no new consent
    assert [r["purpose"] for r in _opened(lake)] == ["risk_control", "marketing", "fraud_research"]
