"""Minimisers against known cases, including python-stdnum's own examples."""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from stdnum import imei as stdnum_imei
from stdnum import imsi as stdnum_imsi
from stdnum import luhn

from devicerisk.contract.schema import MINIMISER_OUTPUTS
from devicerisk.privacy.minimise import (
    MINIMISERS,
    MinimiseContext,
    ip_prefix,
    luhn_valid,
    minimise_app_list,
    minimise_emulator_hardware,
    minimise_emulator_model,
    minimise_iccid,
    minimise_imei,
    minimise_imsi,
    minimise_ip,
    minimise_mac,
    minimise_minor,
    minimise_phone,
    minimise_user_agent,
    stack_signature,
)

CTX = MinimiseContext(event_time=pa.array([datetime(2026, 11, 20, tzinfo=UTC)] * 5, pa.timestamp("us", tz="UTC")))


def _one(fn, value, ctx: MinimiseContext = CTX) -> dict[str, object]:
    return {k: v[0].as_py() for k, v in fn(pa.array([value]), ctx).items()}


@pytest.mark.parametrize(
    ("value", "tac", "checksum_ok"),
    [
        ("35686800-004141-20", "35686800", None),  # stdnum: an IMEISV, no check digit
        ("35-417803-685978-1", "35417803", False),  # stdnum: InvalidChecksum
        ("354178036859789", "35417803", True),  # stdnum: format() example, valid
        ("35-686800-004141-8", "35686800", True),
    ],  # stdnum: add_check_digit example
)
def test_imei_tac_and_checksum_match_python_stdnum(value: str, tac: str, checksum_ok: bool | None) -> None:
    out = _one(minimise_imei, value)
    assert out["tac"] == tac and out["format_ok"] is True
    assert out["checksum_ok"] == checksum_ok
    if checksum_ok is not None:
        assert stdnum_imei.is_valid(value) == checksum_ok


def test_imei_placeholder_is_not_well_formed() -> None:
    assert _one(minimise_imei, "000000000000000") == {"tac": None, "format_ok": False, "checksum_ok": True}


@pytest.mark.parametrize(
    ("value", "mcc", "mnc"),
    [("429011234567890", "429", "01"), ("310150123456789", "310", "150"), ("460001234567890", "460", "00")],
)
def test_imsi_home_matches_python_stdnum(value: str, mcc: str, mnc: str) -> None:
    out = _one(minimise_imsi, value)
    assert (out["mcc"], out["mnc"]) == (mcc, mnc) == stdnum_imsi.split(value)[:2]
    assert out["country"] == stdnum_imsi.info(value)["cc"].upper()


def test_imsi_subscriber_number_is_not_kept() -> None:
    out = _one(minimise_imsi, "460001234567890")
    assert not any(isinstance(v, str) and "1234567890" in v for v in out.values())


def test_mac_oui_only_for_universal_addresses() -> None:
    assert _one(minimise_mac, "3C:5A:B4:12:34:56") == {"oui": "3c5ab4", "randomised": False}
    assert _one(minimise_mac, "DA:A1:19:12:34:56") == {"oui": None, "randomised": True}  # locally administered


def test_iccid_validity() -> None:
    assert _one(minimise_iccid, "89860012345678901238")["valid"] is True  # Luhn-valid, telecom prefix 89
    assert _one(minimise_iccid, "89860012345678901234")["valid"] is False


@pytest.mark.parametrize(
    ("ip", "prefix", "version"),
    [
        ("203.0.113.45", "203.0.113.0/24", 4),
        ("2001:db8:abcd:12::1", "2001:db8:abcd::/48", 6),
        ("::ffff:198.51.100.9", "198.51.100.0/24", 4),
        ("not an ip", None, None),
    ],
)
def test_ip_prefix(ip: str, prefix: str | None, version: int | None) -> None:
    assert _one(minimise_ip, ip) == {"prefix": prefix, "version": version}


def test_user_agent_families() -> None:
    ua = (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "Version/17.1 Mobile/15E148 Safari/604.1"
    )
    assert _one(minimise_user_agent, ua) == {"browser": "Mobile Safari", "os": "iOS", "bot": False}


@pytest.mark.parametrize("ua", ["13800138000Bot/1.0", "Zhang San Spider", "alice@example.com crawler"])
def test_user_agent_free_text_never_survives(ua: str) -> None:
    """Generic bot patterns echo part of the raw text; only families from a fixed list are kept."""
    out = _one(minimise_user_agent, ua)
    assert out["browser"] == "Other" and out["os"] == "Other" and out["bot"] is True


def test_emulator_flags() -> None:
    assert _one(minimise_emulator_model, "sdk_gphone64_x86_64")["emulator"] is True
    assert _one(minimise_emulator_model, "Android SDK built for x86")["emulator"] is True
    assert _one(minimise_emulator_model, "SM-S9180")["emulator"] is False
    assert _one(minimise_emulator_hardware, "ranchu")["emulator"] is True
    assert _one(minimise_emulator_hardware, "qcom")["emulator"] is False


def test_app_list_keeps_counts_and_flags_only() -> None:
    lists = pa.array([["com.tencent.mm", "com.topjohnwu.magisk"], ["org.lsposed.manager"], [], None])
    out = {k: v.to_pylist() for k, v in minimise_app_list(lists, CTX).items()}
    assert out == {
        "count": [2, 1, 0, None],
        "root_app": [True, False, False, None],
        "hook_app": [False, True, False, None],
        "cloner_app": [False, False, False, None],
    }


def test_stack_signature_drops_messages_and_line_numbers() -> None:
    a = "java.lang.NullPointerException: user 13800138000\n\tat com.app.Main.run(Main.java:12)"
    b = "java.lang.NullPointerException: user 13900000000\n\tat com.app.Main.run(Main.java:98)"
    c = "java.lang.IllegalStateException: x\n\tat com.app.Main.run(Main.java:12)"
    assert stack_signature(a) == stack_signature(b) != stack_signature(c)
    assert "13800138000" not in stack_signature(a)
    # a first line that is a message, not a class name, contributes nothing
    assert stack_signature("user Li Wei failed\n\tat com.app.Main.run(Main.java:1)") == stack_signature(
        "user Zhang San failed\n\tat com.app.Main.run(Main.java:7)"
    )


def test_phone_country() -> None:
    assert _one(minimise_phone, "+44 20 7946 0958")["country"] == "GB"
    assert _one(minimise_phone, "13800138000")["country"] == "CN"


def test_minor_is_judged_at_the_event_time() -> None:
    out = minimise_minor(pa.array([2010, 2000, None, 2008, 2007]), CTX)["minor"].to_pylist()
    # 16, 26, unknown, turning 18 in 2026 (may still be 17: a possible minor), 19
    assert out == [True, False, None, True, False]


def test_every_minimiser_declares_its_outputs() -> None:
    assert set(MINIMISERS) == set(MINIMISER_OUTPUTS)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.from_regex(r"[0-9]{0,22}", fullmatch=True)), min_size=1, max_size=50))
def test_vectorised_luhn_agrees_with_python_stdnum(values: list[str | None]) -> None:
    expected = [None if not v else luhn.is_valid(v) for v in values]
    assert luhn_valid(pa.array(values, pa.string())).to_pylist() == expected


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses())
def test_fast_ip_prefix_matches_ipaddress(ip: object) -> None:
    import ipaddress

    addr = ipaddress.ip_address(str(ip))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    bits = 24 if addr.version == 4 else 48
    assert ip_prefix.__wrapped__(str(ip)) == str(ipaddress.ip_network(f"{addr}/{bits}", strict=False))
