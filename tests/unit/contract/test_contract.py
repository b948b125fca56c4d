"""The contract declaration and what is generated from it."""

from __future__ import annotations

from pathlib import Path

import jsonschema
import pytest

from devicerisk.contract.docs import generated_docs
from devicerisk.contract.fields import EVENT_TYPES, FIELDS, LABEL_FIELDS, RETENTION_CLASSES
from devicerisk.contract.model import Action, Sensitivity
from devicerisk.contract.schema import json_schema, lake_schema
from devicerisk.privacy.minimise import MINIMISERS
from devicerisk.privacy.normalise import NORMALISERS
from factories import PAYLOADS, event

DOCS = Path(__file__).resolve().parents[3] / "docs"


@pytest.mark.parametrize("name", sorted(generated_docs()))
def test_generated_docs_match_the_declaration(name: str) -> None:
    committed = (DOCS / name).read_text()
    assert committed == generated_docs()[name], f"docs/{name} is stale: run `make docs`"


def test_every_field_is_fully_declared() -> None:
    retention = {r.name for r in RETENTION_CLASSES}
    event_types = {e.name for e in EVENT_TYPES}
    for field in FIELDS + LABEL_FIELDS:
        assert field.category.startswith(("user.", "system.")), field.path
        assert field.treatments, field.path
        assert field.retention in retention, field.path
        assert field.event_types is None or field.event_types <= event_types, field.path
        for t in field.treatments:
            if t.action is Action.MINIMISE:
                assert t.name in MINIMISERS, field.path
            if t.action is Action.PSEUDONYMISE and field in FIELDS:
                assert t.name in NORMALISERS, field.path


def test_the_label_subject_is_declared_in_each_subject_types_own_domain() -> None:
    """The contract says what labels.py does: a transaction label's subject in the transaction domain."""
    from devicerisk.risk.labels import SUBJECT_DOMAINS

    subject = next(f for f in LABEL_FIELDS if f.path == "subject_id")
    (treatment,) = subject.treatments
    assert treatment.by == "subject_type" and dict(treatment.domains) == SUBJECT_DOMAINS
    assert dict(treatment.domains) == {"transaction": "transaction", "account": "account"}
    assert {d for _, d in treatment.domains} <= set(NORMALISERS)
    row = next(line for line in generated_docs()["data-contract.md"].splitlines() if line.startswith("| `subject_id`"))
    assert "pseudonymise:transaction (subject_type transaction)" in row
    assert "pseudonymise:account (subject_type account)" in row


def test_identifiers_are_never_kept_raw() -> None:
    for field in FIELDS:
        if field.category.startswith(("user.device.device_id", "user.account", "user.contact", "user.financial.bank")):
            assert Action.KEEP not in field.actions, field.path
        if field.sensitivity is Sensitivity.SENSITIVE and field.category != "user.financial":
            assert Action.KEEP not in field.actions, field.path


@pytest.mark.parametrize("event_type", sorted(PAYLOADS))
def test_json_schema_accepts_valid_events(event_type: str) -> None:
    jsonschema.Draft202012Validator.check_schema(json_schema())
    jsonschema.validate(event(event_type), json_schema())


def test_json_schema_rejects_what_ingest_rejects() -> None:
    bad = event("transaction")
    del bad["payload"]["amount"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, json_schema())


def test_lake_schema_has_meta_columns_and_partition() -> None:
    names = lake_schema().names
    assert {"event_date", "batch_id", "key_id", "ingested_at"} <= set(names)
    assert not {"device_imei", "device_mac", "account_id", "network_ip", "payload_phone"} & set(names)
