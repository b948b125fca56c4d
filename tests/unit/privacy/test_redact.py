"""Identifiers typed into kept text are redacted: one test per kind, what is not an identifier stays, and the
vectorised prefilter never skips a value the exact checks would redact."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stdnum import luhn

from devicerisk.contract.fields import FIELDS, LABEL_FIELDS
from devicerisk.contract.model import Action, Kind
from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.read import split_records
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.redact import KINDS, PREFILTER, describe, redact_column, redact_text
from devicerisk.privacy.transform import treat_batch
from factories import event, line

ICCID = "8986001234567890123" + luhn.calc_check_digit("8986001234567890123")

# (kind, identifier as a user or an app might write it, the text around it)
PLANTED = [
    ("imei", "490154203237518", "/device/{}/settings"),
    ("imei", "49-015420-323751-8", "IMEI {}"),  # the printed grouping
    ("imsi", "460001234567891", "sim={}"),  # no check digit: a known home network (MCC 460, MNC 00)
    ("iccid", ICCID, "iccid {} missing"),
    ("mac", "3C:5A:B4:12:34:56", "wlan0 {} up"),
    ("mac", "3c-5a-b4-12-34-56", "{}"),
    ("mac", "3c5a.b412.3456", "bssid {}"),
    ("phone", "13800138000", "/user/{}/orders"),
    ("phone", "+86 138-0013-8000", "call {} now"),
    ("phone", "(010) 6552 9988", "office {}"),
    ("phone", "+44 20 7946 0958", "uk {}"),
    ("phone", "１３８００１３８０００", "tel: {}"),  # full-width digits, as a Chinese keyboard types them
    ("phone", "13800138000", "tel{}"),  # glued to letters
    ("ip", "203.0.113.77", "proxy {}:8080"),
    ("ip", "2001:db8:85a3::8a2e:370:7334", "from {} via"),
    ("ip", "fe80::1%wlan0", "[{}]"),
    ("email", "li.wei+shop@example.com.cn", "mailto:{}"),
    ("adid", "6D92078A-8246-4BA4-AE5B-76104861E7DC", "idfa={}"),
]


@pytest.mark.parametrize(("kind", "identifier", "around"), PLANTED)
def test_each_kind_of_identifier_is_replaced_by_its_marker(kind: str, identifier: str, around: str) -> None:
    text = around.format(identifier)
    redacted = redact_text(text)
    assert redacted.text == around.format(f"[{kind}]")
    assert redacted.identifiers == ((kind, identifier),)


@pytest.mark.parametrize(
    "text",
    [
        "java.lang.NullPointerException",
        "std::bad_alloc",
        "EXC_BAD_ACCESS",
        "9.4.0",
        "2026.11.2",
        "17.6.1",
        "23127PN0CC",
        "22101316C",
        "iPhone17,1",
        "SM-G991B",
        "1080x2400",
        "Asia/Shanghai",
        "zh-Hans-CN",
        "/product/5359819",
        "/orders/page/2",
        "12:30:45",
        "2026-11-20 10:00:00",
        "build 9.4.0 (20261120)",
        "490154203237519",  # an IMEI's shape with a wrong check digit, and no known home network either
        "China Merchants Bank",
        "CNY",
    ],
)
def test_what_is_not_an_identifier_is_kept_as_it_is(text: str) -> None:
    assert redact_text(text).text == text


def _prefiltered(texts: list[str]) -> list[bool]:
    return pc.match_substring_regex(pa.array(texts, pa.string()), PREFILTER).to_pylist()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    planted=st.sampled_from(PLANTED),
    before=st.text(alphabet="abcxyz/_-. 0123456789", max_size=12),
    after=st.text(alphabet="abcxyz/_-. 0123456789", max_size=12),
)
def test_the_prefilter_selects_every_text_the_exact_checks_would_redact(
    planted: tuple[str, str, str], before: str, after: str
) -> None:
    _, identifier, _ = planted
    text = f"{before} {identifier} {after}"
    if redact_text(text).identifiers:
        assert _prefiltered([text]) == [True], text


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="0123456789abcdefABCDEF:.-+@() /xyz", max_size=40))
def test_no_identifier_is_found_in_a_text_the_prefilter_skips(text: str) -> None:
    if not _prefiltered([text])[0]:
        assert redact_text(text).identifiers == (), text


def test_a_column_is_redacted_and_each_occurrence_counted() -> None:
    column = pa.array(["/home", None, "call 13800138000", "call 13800138000", "x li@ex.com y 13900139000", "/p/7"])
    redacted, found = redact_column(column)
    assert redacted.to_pylist() == ["/home", None, "call [phone]", "call [phone]", "x [email] y [phone]", "/p/7"]
    assert found == {"phone": 3, "email": 1}
    assert describe(found) == "identifiers redacted from kept text: email 1, phone 3"
    assert describe(found.__class__()) is None


def test_a_column_without_candidates_comes_back_untouched() -> None:
    column = pa.array(["9.4.0", "9.4.1", None] * 1000)
    redacted, found = redact_column(column)
    assert redacted is column and not found


def test_every_kept_string_is_redacted_except_enums_and_record_keys() -> None:
    for f in FIELDS + LABEL_FIELDS:
        kept_text = f.kind is Kind.STRING and Action.KEEP in f.actions
        assert f.redacted == (kept_text and f.enum is None and f.path not in ("event_id", "label_id")), f.path
    redacted = {f.path for f in FIELDS if f.redacted}
    assert {"payload.page", "payload.exception_type", "device.model", "app.version"} <= redacted
    assert {k for k, _, _ in PLANTED} == set(KINDS)  # every kind has a test above


PSEUDONYMISER = Pseudonymiser(Key.from_bytes(os.urandom(32), "pseudonym"))


def test_the_transform_redacts_every_kept_text_field_and_counts_the_kinds() -> None:
    device = {
        "model": "Pixel 8 490154203237518",
        "manufacturer": "li@example.com",
        "os": "Android",
        "os_version": "14",
        "imei": "352099001761481",
    }
    records = [
        event(
            "operation",
            event_id="6d92078a-8246-4ba4-ae5b-76104861e7dc",
            device=device,
            app={"platform": "android", "version": "9.4.0 tel 13800138000"},
            payload={"action": "view", "page": "/u/13900139000?mac=3c:5a:b4:12:34:56"},
        ),
        event(
            "crash",
            device=device,
            payload={"kind": "crash", "exception_type": "IllegalState 203.0.113.7", "stack_trace": "x"},
        ),
    ]
    parsed = parse_batch(split_records("b", "f", b"\n".join(line(r) for r in records) + b"\n"))
    treated = treat_batch(parsed.table, PSEUDONYMISER, "b")
    rows = treated.table.to_pylist()
    assert rows[0]["event_id"] == "6d92078a-8246-4ba4-ae5b-76104861e7dc"  # a record key is not redacted
    assert rows[0]["page"] == "/u/[phone]?mac=[mac]" and rows[0]["app_version"] == "9.4.0 tel [phone]"
    assert rows[1]["exception_type"] == "IllegalState [ip]"
    assert {r["device_model"] for r in rows} == {"Pixel 8 [imei]"} and rows[0]["device_manufacturer"] == "[email]"
    assert treated.redactions == {"imei": 2, "email": 2, "phone": 2, "mac": 1, "ip": 1}
    text = "\n".join(str(v) for r in rows for v in r.values())
    for raw in ("490154203237518", "li@example.com", "13800138000", "13900139000", "3c:5a:b4", "203.0.113.7"):
        assert raw not in text
