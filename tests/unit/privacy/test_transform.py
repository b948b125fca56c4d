"""The privacy transform: no raw identifier survives, whatever its printed form."""

from __future__ import annotations

import os

import pyarrow as pa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action
from devicerisk.contract.schema import lake_schema
from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.read import split_records
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.transform import treat
from factories import event, line

PSEUDONYMISER = Pseudonymiser(Key.from_bytes(os.urandom(32), "pseudonym"))

# Realistic identifiers: enough entropy that a match in the output can only be a leak. A /24 network
# address (x.y.z.0) is left out because its prefix, which the contract keeps, is the same text.
digits = st.from_regex(r"[1-9][0-9]{14}", fullmatch=True)
hexes = st.from_regex(r"[0-9a-f][048c][0-9a-f]{10}", fullmatch=True)
uuids = st.uuids().map(str)
ipv4 = st.tuples(st.integers(11, 99), st.integers(0, 255), st.integers(0, 255), st.integers(1, 254)).map(
    lambda octets: ".".join(map(str, octets))
)
accounts = st.from_regex(r"acct-[A-Za-z0-9]{10}", fullmatch=True)
words = st.text(alphabet="abcdefghijklmnopqrstuvwxyz ", min_size=12, max_size=30).filter(lambda t: len(t.strip()) > 10)


def _treated(records: list[dict]) -> pa.Table:
    raw = split_records("batch", "f", b"\n".join(line(r) for r in records) + b"\n")
    parsed = parse_batch(raw)
    assert not parsed.rejected, parsed.rejected
    return treat(parsed.table, PSEUDONYMISER, "batch")


def _all_strings(table: pa.Table) -> str:
    return "\n".join(str(v) for column in table.columns for v in column.to_pylist() if v is not None)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    imei=digits,
    mac=hexes,
    oaid=uuids,
    ip=ipv4,
    account=accounts,
    phone=st.from_regex(r"13[0-9]{9}", fullmatch=True),
    search=words,
)
def test_no_raw_identifier_survives_the_transform(
    imei: str, mac: str, oaid: str, ip: str, account: str, phone: str, search: str
) -> None:
    device = {
        "model": "M2012K11AC",
        "imei": imei,
        "mac": ":".join(mac[i : i + 2] for i in range(0, 12, 2)),
        "oaid": oaid,
        "imsi": "46000" + imei[:10],
        "iccid": "8986" + imei,
    }
    records = [
        event(
            "operation",
            account_id=account,
            device=device,
            network={"ip": ip},
            payload={"action": "search", "search_text": search},
        ),
        event(
            "account",
            account_id=account,
            device=device,
            network={"ip": ip},
            payload={"action": "register", "phone": phone, "real_name": search, "id_number": imei + "123"},
        ),
    ]
    text = _all_strings(_treated(records))
    normalised_mac = mac.lower()
    for raw in (
        imei,
        imei[:14],
        mac,
        normalised_mac,
        oaid,
        oaid.lower(),
        ip,
        account.strip(),
        phone,
        search.strip(),
        "46000" + imei[:10],
        "8986" + imei,
    ):
        assert raw not in text


def test_only_declared_columns_reach_the_lake() -> None:
    table = _treated([event(t) for t in ("device_info", "operation", "transaction", "crash", "app_list", "account")])
    assert table.schema == lake_schema()
    dropped = {f.column for f in FIELDS if f.actions == {Action.DROP}}
    pseudonymised_only = {f.column for f in FIELDS if f.actions == {Action.PSEUDONYMISE}}
    assert not (dropped | pseudonymised_only) & set(table.column_names)
    text = _all_strings(table)
    for secret in ("Li Wei", "110101199003074514", "6222020200112233445", "parcel to Shenzhen", "13800138000"):
        assert secret not in text


def test_fields_of_other_event_types_are_nulled() -> None:
    record = event("operation")
    record["payload"]["amount"] = 999.0
    assert _treated([record]).column("amount").to_pylist() == [None]
