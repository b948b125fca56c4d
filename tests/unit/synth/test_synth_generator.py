"""The synthetic telemetry generator: contract conformance, realism, determinism and streaming."""

from __future__ import annotations

import gzip
import itertools
import json
import random
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import phonenumbers
import pytest
from stdnum import imei as stdimei
from stdnum import luhn
from stdnum.cn import ric
from stdnum.id import nik
from stdnum.in_ import aadhaar
from stdnum.th import pin
from stdnum.us import ssn

from devicerisk.contract.fields import FIELDS, LABEL_FIELDS, SCHEMA_VERSION
from devicerisk.contract.model import Field, Kind
from devicerisk.synth import FRAUD_SCENARIOS, LOOKALIKE_TAGS, SynthConfig, generate
from devicerisk.synth.clock import DAY_MS, JS_UTC, MILLIS, Clock, to_ms
from devicerisk.synth.devices import HOOK_APPS, ROOT_APPS
from devicerisk.synth.world import COUNTRIES

SMALL = SynthConfig(accounts=400, days=4, events_per_batch=5000, seed=11)
ZERO_ID = "00000000-0000-0000-0000-000000000000"
KNOWN_MCC_MNC = {
    "46000",
    "46001",
    "46011",
    "310260",
    "310410",
    "23415",
    "23410",
    "40445",
    "405857",
    "51010",
    "51011",
    "52003",
    "52004",
}
ENVELOPE_OBJECTS = {"app", "device", "network"}


# -- fixtures ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Any]:
    out = tmp_path_factory.mktemp("synth")
    return out, generate(out, SMALL)


@pytest.fixture(scope="module")
def events(run: tuple[Path, Any]) -> list[dict[str, Any]]:
    _, result = run
    return [json.loads(line) for path in result.batches for line in gzip.open(path)]


@pytest.fixture(scope="module")
def truth(run: tuple[Path, Any]) -> list[dict[str, Any]]:
    return [json.loads(line) for line in run[1].truth_file.open()]


@pytest.fixture(scope="module")
def accounts(truth: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {t["subject_id"]: t for t in truth if t["subject_type"] == "account"}


def _get(event: dict[str, Any], path: str) -> tuple[bool, Any]:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _kind_ok(kind: Kind, value: Any) -> bool:
    if kind is Kind.STRING:
        return isinstance(value, str)
    if kind is Kind.INT:
        return isinstance(value, int) and not isinstance(value, bool)
    if kind is Kind.FLOAT:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is Kind.BOOL:
        return isinstance(value, bool)
    if kind is Kind.STRING_LIST:
        return isinstance(value, list) and all(isinstance(v, str) for v in value)
    if kind is Kind.TIMESTAMP:
        if not isinstance(value, str) or "T" not in value:
            return False
        try:
            return datetime.fromisoformat(value).utcoffset() is not None  # an explicit offset is required
        except ValueError:
            return False
    raise AssertionError(kind)


def contract_errors(record: dict[str, Any], fields: tuple[Field, ...], event_type: str | None) -> list[str]:
    """Everything about ``record`` that the contract does not allow."""
    errors = []
    allowed = {f.path for f in fields if event_type is None or f.applies_to(event_type)}
    for f in fields:
        if event_type is not None and not f.applies_to(event_type):
            continue
        present, value = _get(record, f.path)
        if not present or value is None:
            if f.required:
                errors.append(f"missing {f.path}")
            continue
        if not _kind_ok(f.kind, value):
            errors.append(f"{f.path}: {value!r} is not {f.kind}")
        elif f.enum is not None and value not in f.enum:
            errors.append(f"{f.path}: {value!r} not in {f.enum}")
        elif f.max_length is not None and isinstance(value, str) and len(value) > f.max_length:
            errors.append(f"{f.path}: longer than {f.max_length}")

    def leaves(node: dict[str, Any], prefix: str) -> Iterator[str]:
        for key, value in node.items():
            path = f"{prefix}{key}"
            if isinstance(value, dict) and (path in ENVELOPE_OBJECTS or path == "payload"):
                yield from leaves(value, path + ".")
            else:
                yield path

    errors += [f"undeclared {p}" for p in leaves(record, "") if p not in allowed]
    return errors


def _mac_octets(mac: str) -> bytes:
    return bytes.fromhex(mac.replace(":", "").replace("-", "").replace(".", ""))


# -- contract -----------------------------------------------------------------------------------------


def test_every_event_matches_the_contract(events: list[dict[str, Any]]) -> None:
    assert len(events) > 10_000
    bad = [(e["event_id"], err) for e in events for err in contract_errors(e, FIELDS, e.get("event_type"))]
    assert not bad, bad[:10]
    assert {e["schema_version"] for e in events} == {SCHEMA_VERSION}
    assert len({e["event_id"] for e in events}) == len(events)
    assert Counter(e["event_type"] for e in events).keys() == {
        "device_info",
        "operation",
        "transaction",
        "crash",
        "app_list",
        "account",
    }


def test_platform_identifiers(events: list[dict[str, Any]]) -> None:
    by_platform: dict[str, set[str]] = defaultdict(set)
    for e in events:
        by_platform[e["app"]["platform"]] |= set(e["device"])
    assert not by_platform["ios"] & {"imei", "mac", "android_id", "oaid", "meid", "imsi", "iccid"}
    assert {"idfa", "idfv"} <= by_platform["ios"]
    assert {"imei", "mac", "oaid", "android_id", "imsi", "iccid", "meid"} <= by_platform["android"]
    assert by_platform["web"] <= {"os", "os_version"}
    web_ops = [e for e in events if e["app"]["platform"] == "web" and e["event_type"] == "operation"]
    assert web_ops and all("Mozilla/5.0" in e["payload"]["user_agent"] for e in web_ops)
    assert any(e["account_id"] is None for e in events)


def test_event_times_carry_offsets(events: list[dict[str, Any]]) -> None:
    suffixes = Counter(e["event_time"][-6:] if e["event_time"][-1] != "Z" else "Z" for e in events)
    assert {"+08:00", "+05:30", "+07:00", "Z"} <= suffixes.keys()
    assert any(s.startswith("-0") for s in suffixes)


def test_clock_matches_zoneinfo_across_dst() -> None:
    names = ["Asia/Kolkata", "America/New_York", "Europe/London", "Asia/Shanghai", "America/Los_Angeles"]
    start = to_ms(datetime(2026, 10, 20, tzinfo=UTC))
    clock = Clock(start, 24 * 20, names)
    rng = random.Random(0)
    for _ in range(5000):
        ms, tz, style = start + rng.randrange(20 * DAY_MS), rng.randrange(len(names)), rng.choice((MILLIS, JS_UTC))
        text = clock.fmt(ms, tz, style)
        parsed = datetime.fromisoformat(text)
        assert to_ms(parsed) == ms, text
        expected = timedelta(0) if style == JS_UTC else parsed.astimezone(ZoneInfo(names[tz])).utcoffset()
        assert parsed.utcoffset() == expected, text


# -- identifiers ----------------------------------------------------------------------------------------


def test_imeis_are_luhn_valid_except_planted(events: list[dict[str, Any]], accounts: dict[str, Any]) -> None:
    users: dict[str, set[str]] = defaultdict(set)  # android_id -> accounts seen on it
    for e in events:
        if "android_id" in e["device"] and e["account_id"]:
            users[e["device"]["android_id"]].add(e["account_id"])
    invalid = Counter()
    for e in events:
        value = e["device"].get("imei")
        if value is None or len(value) != 15 or stdimei.is_valid(value):
            continue
        # unlogged events (account_id null) are traced through the other accounts on the handset
        holders = {e["account_id"]} if e["account_id"] else users[e["device"]["android_id"]]
        assert holders and all("invalid_imei" in accounts[a]["tags"] for a in holders), value
        invalid[value] += 1
    assert invalid, "some handsets report an IMEI with a wrong check digit"
    imeis = {e["device"]["imei"] for e in events if "imei" in e["device"]}
    assert len(invalid) < 0.1 * len(imeis)
    assert all(v.isdigit() and len(v) in (15, 16) for v in imeis)


def test_imeisv_shares_tac_and_serial_with_the_imei(events: list[dict[str, Any]]) -> None:
    by_device: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if "imei" in e["device"]:
            by_device[e["device"]["android_id"]].add(e["device"]["imei"])
    pairs = 0
    for values in by_device.values():
        imeis = {v for v in values if len(v) == 15}
        for sv in (v for v in values if len(v) == 16):
            assert stdimei.imei_type(sv) == "IMEISV"
            if imeis:
                assert {i[:14] for i in imeis} == {sv[:14]}
                pairs += 1
    assert pairs > 0


def test_macs_universal_randomised_and_formats(events: list[dict[str, Any]]) -> None:
    macs = {e["device"]["mac"] for e in events if "mac" in e["device"]}
    octets = [_mac_octets(m) for m in macs]
    assert any(o[0] & 0x02 == 0 and o != bytes(6) for o in octets), "universal (vendor OUI) MACs"
    randomised = [m for m, o in zip(macs, octets, strict=True) if o[0] & 0x02 and m != "02:00:00:00:00:00"]
    assert randomised and all(m[1].upper() in "26AE" for m in randomised)
    assert all(o[0] & 0x01 == 0 for o in octets), "unicast only"
    styles = {("colon" if ":" in m else "dash" if "-" in m else "dot") for m in macs}
    assert styles == {"colon", "dash", "dot"}
    assert any(m.isupper() for m in macs if "-" in m)


def test_placeholders_across_unrelated_accounts(events: list[dict[str, Any]], accounts: dict[str, Any]) -> None:
    for field, value in (
        ("mac", "02:00:00:00:00:00"),
        ("imei", "000000000000000"),
        ("idfa", ZERO_ID),
        ("oaid", ZERO_ID),
    ):
        holders = {e["account_id"] for e in events if e["device"].get(field) == value and e["account_id"]}
        groups = {accounts[a]["group"] or a for a in holders}
        assert len(groups) >= 5, (field, len(groups))
    assert any(e["device"].get("oaid", "").isupper() for e in events)


def test_sim_and_network_identifiers(events: list[dict[str, Any]]) -> None:
    imsis = {e["device"]["imsi"] for e in events if "imsi" in e["device"]}
    assert all(len(v) == 15 and (v[:5] in KNOWN_MCC_MNC or v[:6] in KNOWN_MCC_MNC) for v in imsis)
    iccids = {e["device"]["iccid"] for e in events if "iccid" in e["device"]}
    assert all(v.startswith("89") and len(v) in (19, 20) and luhn.is_valid(v) for v in iccids)
    assert {len(v) for v in iccids} == {19, 20}
    ips = {e["network"]["ip"] for e in events}
    assert any(":" in ip for ip in ips) and any("." in ip for ip in ips)


def test_people_and_money(events: list[dict[str, Any]], accounts: dict[str, Any]) -> None:
    regions = {"CN": "CN", "IN": "IN", "ID": "ID", "TH": "TH", "US": "US", "GB": "GB"}
    phones = [(e["payload"]["phone"], accounts[e["account_id"]]["country"]) for e in events if "phone" in e["payload"]]
    assert phones
    for phone, country in phones:
        assert phonenumbers.is_valid_number(phonenumbers.parse(phone, regions[country])), phone
    assert any(p.startswith("+") and " " in p for p, _ in phones) and any(p[0] != "+" for p, _ in phones)
    registers = [e for e in events if e["payload"].get("action") == "register"]
    checks = {"CN": ric.is_valid, "IN": aadhaar.is_valid, "TH": pin.is_valid, "ID": nik.is_valid, "US": ssn.is_valid}
    id_numbers = [
        (e["payload"]["id_number"], accounts[e["account_id"]]["country"])
        for e in registers
        if "id_number" in e["payload"]
    ]
    assert {c for _, c in id_numbers} >= {"CN", "IN"}
    assert all(checks[c](n) for n, c in id_numbers if c in checks), id_numbers
    assert any("bank_account" in e["payload"] for e in events if e["event_type"] == "transaction")
    assert any("search_text" in e["payload"] for e in events)
    assert any("\n\tat " in e["payload"].get("stack_trace", "") for e in events)
    apps = {a for e in events if e["event_type"] == "app_list" for a in e["payload"]["installed"]}
    assert apps & set(ROOT_APPS) and apps & set(HOOK_APPS)  # rooted and hooked phones list their tools


def test_account_lifecycle_events(events: list[dict[str, Any]]) -> None:
    actions = Counter(e["payload"]["action"] for e in events if e["event_type"] == "account")
    assert set(actions) == {"register", "login", "login_failed", "password_change", "cancel", "consent", "age_declared"}
    consents = [e["payload"] for e in events if e["payload"].get("action") == "consent"]
    assert {(p["purpose"], p["granted"]) for p in consents} >= {("risk_control", False), ("risk_control", True)}
    minors = [
        e["payload"]
        for e in events
        if e["payload"].get("action") == "age_declared" and e["payload"]["birth_year"] > 2008
    ]
    assert {p["guardian_consent"] for p in minors} == {True, False}


# -- scenarios, truth and labels ---------------------------------------------------------------------------


def test_every_scenario_and_lookalike_is_in_the_truth(
    events: list[dict[str, Any]], truth: list[dict[str, Any]], accounts: dict[str, Any]
) -> None:
    fraudsters = {a["scenario"] for a in accounts.values() if a["fraud"]}
    victims = {a["victim_of"] for a in accounts.values() if a["victim_of"]}
    assert fraudsters | victims == set(FRAUD_SCENARIOS)
    assert not any(a["fraud"] for a in accounts.values() if a["victim_of"])  # a victim's account is honest
    tags = {t for a in accounts.values() for t in a["tags"]}
    assert set(LOOKALIKE_TAGS) <= tags
    fraud_txns = {t["subject_id"]: t for t in truth if t["subject_type"] == "transaction"}
    seen = {e["payload"]["transaction_id"] for e in events if e["event_type"] == "transaction"}
    assert fraud_txns.keys() <= seen
    assert {t["scenario"] for t in fraud_txns.values()} == set(FRAUD_SCENARIOS)
    # a device farm is 10-40 accounts on one handset
    farms: dict[str, set[str]] = defaultdict(set)
    for a in accounts.values():
        if a["scenario"] == "device_farm":
            farms[a["group"]].add(a["subject_id"])
    for members in farms.values():
        assert 10 <= len(members) <= 40
        android_ids = {e["device"]["android_id"] for e in events if e["account_id"] in members}
        assert len(android_ids) == 1
    families: dict[str, set[str]] = defaultdict(set)
    for a in accounts.values():
        if "family_device" in a["tags"]:
            families[a["group"]].add(a["subject_id"])
    assert families and all(2 <= len(members) <= 4 for members in families.values())
    card = [
        e
        for e in events
        if e["event_type"] == "transaction"
        and e["payload"]["transaction_id"] in fraud_txns
        and fraud_txns[e["payload"]["transaction_id"]]["scenario"] == "card_testing"
    ]
    assert Counter(e["payload"]["status"] for e in card).most_common(1)[0][0] == "failed"


def test_lookalikes_show_the_patterns_of_fraud(events: list[dict[str, Any]], accounts: dict[str, Any]) -> None:
    """Honest users with fraud's patterns, so that no single rule separates the two."""
    tagged = {
        tag: {a for a, t in accounts.items() if tag in t["tags"] and not t["fraud"]}
        for tag in ("pickup_kiosk", "bulk_shipper", "expat")
    }
    assert all(tagged.values())
    # a pickup kiosk: one handset that many honest accounts sign in on, as in a device farm
    users: dict[str, set[str]] = defaultdict(set)
    for e in events:
        if e["account_id"] in tagged["pickup_kiosk"] and "android_id" in e["device"]:
            users[e["device"]["android_id"]].add(e["account_id"])
    assert max(len(u) for u in users.values()) >= 10
    # a bulk shipper: a run of 15 or more card payments within an hour, some of them declined
    runs = []
    for account in tagged["bulk_shipper"]:
        times = sorted(
            (datetime.fromisoformat(e["event_time"]), e["payload"]["status"])
            for e in events
            if e["account_id"] == account and e["event_type"] == "transaction"
        )
        runs += [
            times[i : i + 15] for i in range(len(times) - 14) if times[i + 14][0] - times[i][0] <= timedelta(hours=1)
        ]
    assert runs and any(status == "failed" for run in runs for _, status in run)
    # an expat: the SIM's country is not the country of the phone's time zone
    mcc_country = {c.mcc: code for code, country in COUNTRIES.items() for c in country.carriers}
    tz_country = {tz: code for code, country in COUNTRIES.items() for tz in country.tzs}
    sims = {
        (e["account_id"], e["device"]["imsi"][:3])
        for e in events
        if e["account_id"] in tagged["expat"] and "imsi" in e["device"]
    }
    zones = {
        e["account_id"]: e["payload"]["timezone"]
        for e in events
        if e["account_id"] in tagged["expat"] and e["event_type"] == "device_info"
    }
    assert any(mcc_country[mcc] != tz_country[zones[a]] for a, mcc in sims if a in zones)


def test_labels_arrive_after_the_event(run: tuple[Path, Any], events: list[dict[str, Any]]) -> None:
    labels = [json.loads(line) for path in run[1].label_files for line in path.open()]
    assert {lab["label"] for lab in labels} == {"fraud", "legitimate"}
    assert not [err for lab in labels for err in contract_errors(lab, LABEL_FIELDS, None)]
    txn_time = {e["payload"]["transaction_id"]: e["event_time"] for e in events if e["event_type"] == "transaction"}
    first_seen: dict[str, datetime] = {}
    for e in events:
        if e["account_id"]:
            t = datetime.fromisoformat(e["event_time"])
            first_seen[e["account_id"]] = min(first_seen.get(e["account_id"], t), t)
    for lab in labels:
        reported = datetime.fromisoformat(lab["reported_at"])
        if lab["subject_type"] == "transaction":
            delay = reported - datetime.fromisoformat(txn_time[lab["subject_id"]])
            assert timedelta(days=1) <= delay <= timedelta(days=14, seconds=1)
        else:
            assert reported - first_seen[lab["subject_id"]] >= timedelta(days=1)
        assert (lab["label"] == "fraud") == ("fraud_type" in lab)


def test_a_reported_fraudster_is_closed_down(
    run: tuple[Path, Any], events: list[dict[str, Any]], truth: list[dict[str, Any]], accounts: dict[str, Any]
) -> None:
    """Once a fraud report on an account comes in (released at the end of its day), the account does nothing
    more; a report on a payment alone (a victim's dispute) closes nothing."""
    labels = [json.loads(line) for path in run[1].label_files for line in path.open()]
    start = to_ms(SMALL.start)
    closed: dict[str, int] = {}
    for lab in labels:
        if lab["label"] != "fraud" or lab["subject_type"] != "account":
            continue
        acct = lab["subject_id"]
        reported = to_ms(datetime.fromisoformat(lab["reported_at"]))
        released = start + (reported - start) // DAY_MS * DAY_MS + DAY_MS  # the day boundary after the report
        closed[acct] = min(closed.get(acct, released), released)
    assert len(closed) >= 3  # the check below is not empty
    late = [
        e
        for e in events
        if e["account_id"] in closed
        and to_ms(datetime.fromisoformat(e["event_time"])) > closed[e["account_id"]] + 2 * 3_600_000
    ]
    assert late == []  # (a session or burst already under way may run on for a while)


# -- files, determinism, streaming ---------------------------------------------------------------------


def test_batches_are_ordered_and_complete(run: tuple[Path, Any], events: list[dict[str, Any]]) -> None:
    out, result = run
    names = [p.name for p in result.batches]
    assert names == sorted(names) and all(n.startswith("batch-") and n.endswith(".ndjson.gz") for n in names)
    assert result.events == len(events) and len(result.batches) == -(-len(events) // SMALL.events_per_batch)
    assert not [p for p in out.rglob(".*")], "no temporary files left behind"
    times = [datetime.fromisoformat(e["event_time"]) for e in events]
    late = sum(a > b + timedelta(minutes=5) for a, b in itertools.pairwise(times))
    assert late < 0.01 * len(times)


def _file_bytes(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


def test_deterministic_by_seed(tmp_path: Path) -> None:
    config = SynthConfig(accounts=120, days=2, events_per_batch=2000, seed=3)
    generate(tmp_path / "a", config)
    generate(tmp_path / "b", config)
    first, second = _file_bytes(tmp_path / "a"), _file_bytes(tmp_path / "b")
    assert first == second and len(first) > 3
    generate(tmp_path / "c", SynthConfig(accounts=120, days=2, events_per_batch=2000, seed=4))
    other = _file_bytes(tmp_path / "c")
    assert other["truth/scenarios.ndjson"] != first["truth/scenarios.ndjson"]
    # plain output holds the same lines as the gzip output
    generate(tmp_path / "d", SynthConfig(accounts=120, days=2, events_per_batch=2000, seed=3, gzip=False))
    plain = _file_bytes(tmp_path / "d")
    gz = {k.removesuffix(".gz"): gzip.decompress(v) for k, v in first.items() if k.endswith(".gz")}
    assert {k: v for k, v in plain.items() if k.startswith("telemetry/")} == gz


def test_scenario_mix_rerun_and_validation(tmp_path: Path) -> None:
    generate(tmp_path, SynthConfig(accounts=150, days=2, events_per_batch=1000))
    result = generate(tmp_path, SynthConfig(accounts=80, days=1, scenario_mix={"card_testing": 1.0}))
    scenarios = {json.loads(line)["scenario"] for line in result.truth_file.open()}
    assert scenarios == {None, "card_testing"}
    assert sorted((tmp_path / "telemetry").iterdir()) == result.batches, "a re-run replaces the earlier batches"
    assert sorted((tmp_path / "labels").iterdir()) == result.label_files
    with pytest.raises(ValueError, match="unknown scenarios"):
        generate(tmp_path, SynthConfig(scenario_mix={"bogus": 1.0}))


def test_memory_stays_flat_while_streaming(tmp_path: Path) -> None:
    # few accounts over many days: the population is tiny, so the peak is the per-hour working set
    config = SynthConfig(accounts=80, days=45, events_per_batch=20_000, seed=5)
    seen: list[int] = []
    tracemalloc.start()
    try:
        result = generate(tmp_path, config, progress=seen.append)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    raw = sum(len(gzip.decompress(p.read_bytes())) for p in result.batches)
    assert seen and seen[-1] == result.events and seen == sorted(seen)
    bound = 8 * 2**20
    assert raw > 2 * bound, "the run must be big enough that holding its events would break the bound"
    assert peak < bound, f"peak {peak / 2**20:.1f} MiB for {raw / 2**20:.0f} MiB of events"
