"""Keyed pseudonyms: the PRF against RFC 4231, normalisation, domains and placeholders."""

from __future__ import annotations

import hashlib
import hmac
import os

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from devicerisk.privacy import pseudonymise
from devicerisk.privacy.keys import Key
from devicerisk.privacy.normalise import canonical_ip, canonical_phone
from devicerisk.privacy.pseudonymise import (
    Pseudonymiser,
    hmac_sha256_arrow,
    hmac_sha256_duckdb,
    hmac_sha256_hex,
    hmac_sha256_native,
)

# Both implementations of the vectorised PRF; the native one is required where it can be built.
IMPLEMENTATIONS = [hmac_sha256_duckdb, hmac_sha256_native]

# RFC 4231 test cases 1, 2, 3, 4, 6 and 7 (HMAC-SHA-256); keys and data as bytes.
RFC4231 = [
    (b"\x0b" * 20, b"Hi There", "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
    (b"Jefe", b"what do ya want for nothing?", "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
    (b"\xaa" * 20, b"\xdd" * 50, "773ea91e36800e46854db8ebd09181a72959098b3ef8c122d9635514ced565fe"),
    (bytes(range(1, 26)), b"\xcd" * 50, "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
    (
        b"\xaa" * 131,
        b"Test Using Larger Than Block-Size Key - Hash Key First",
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54",
    ),
    (
        b"\xaa" * 131,
        b"This is a test using a larger than block-size key and a larger than block-size data. The key "
        b"needs to be hashed before being used by the HMAC algorithm.",
        "9b09ffa71b942fcb27635fbcd5b0e944bfdc63644f0713938a7f51535c3a35e2",
    ),
]


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@pytest.mark.parametrize(("key", "data", "expected"), RFC4231, ids=["tc1", "tc2", "tc3", "tc4", "tc6", "tc7"])
def test_vectorised_hmac_matches_rfc4231(impl, key: bytes, data: bytes, expected: str) -> None:
    assert hmac.new(key, data, hashlib.sha256).hexdigest() == expected  # the reference itself
    if all(b < 0x80 for b in data):  # the vectorised PRF takes UTF-8 text
        assert impl(key, pa.array([data.decode()])).to_pylist() == [expected]
        assert impl(key, pa.array([data.decode()]), 32).to_pylist() == [expected[:32]]


def test_the_native_prf_is_built() -> None:
    """The OpenSSL accelerator is part of the install here; the DuckDB path is only a fallback."""
    assert pseudonymise._prf is not None


@pytest.mark.parametrize("impl", IMPLEMENTATIONS)
@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.one_of(st.none(), st.text(min_size=0, max_size=80)), min_size=1, max_size=20),
    st.binary(min_size=1, max_size=100),
    st.integers(0, 3),
)
def test_vectorised_and_scalar_prf_agree(impl, values: list[str | None], key: bytes, start: int) -> None:
    array = pa.array(values, pa.string()).slice(min(start, len(values) - 1))  # sliced arrays too
    expected = [None if v is None else hmac_sha256_hex(key, v) for v in array.to_pylist()]
    assert impl(key, array).to_pylist() == expected
    assert impl(key, array.cast(pa.large_string())).to_pylist() == expected
    assert hmac_sha256_arrow(key, array).to_pylist() == expected


@pytest.fixture
def pseudonymiser() -> Pseudonymiser:
    return Pseudonymiser(Key.from_bytes(os.urandom(32), "pseudonym"))


def _same(p: Pseudonymiser, domain: str, forms: list[str]) -> set[str | None]:
    return set(p.pseudonymise(domain, pa.array(forms)).to_pylist())


def test_imei_and_imeisv_of_one_device_share_a_pseudonym(pseudonymiser: Pseudonymiser) -> None:
    forms = ["352099001761481", "35-209900-176148-1", "3520990017614823", "35209900176148"]
    pids = _same(pseudonymiser, "imei", forms)
    assert len(pids) == 1 and None not in pids


def test_mac_formats_agree(pseudonymiser: Pseudonymiser) -> None:
    pids = _same(pseudonymiser, "mac", ["3c:5a:b4:12:34:56", "3C-5A-B4-12-34-56", "3c5a.b412.3456", "3C5AB4123456"])
    assert len(pids) == 1 and None not in pids


def test_uuids_compare_case_insensitively(pseudonymiser: Pseudonymiser) -> None:
    forms = ["6d92078a-8246-4ba4-ae5b-76104861e7dc", "6D92078A-8246-4BA4-AE5B-76104861E7DC"]
    assert len(_same(pseudonymiser, "idfa", forms)) == 1


def test_ip_and_phone_canonical_forms(pseudonymiser: Pseudonymiser) -> None:
    assert len(_same(pseudonymiser, "ip", ["2001:db8::1", "2001:0DB8:0000:0000:0000:0000:0000:0001"])) == 1
    assert len(_same(pseudonymiser, "ip", ["192.0.2.7", "::ffff:192.0.2.7"])) == 1
    assert len(_same(pseudonymiser, "phone", ["+86 138 0013 8000", "13800138000", "+8613800138000"])) == 1


@pytest.mark.parametrize(
    ("domain", "placeholder"),
    [
        ("idfa", "00000000-0000-0000-0000-000000000000"),
        ("oaid", "00000000-0000-0000-0000-000000000000"),
        ("oaid", "0000000000000000"),
        ("mac", "02:00:00:00:00:00"),
        ("imei", "000000000000000"),
        ("android_id", "9774d56d682e549c"),
        ("ip", "0.0.0.0"),
        ("imei", "12345"),
        ("mac", "not-a-mac"),
    ],
)
def test_placeholders_and_malformed_values_become_null(
    pseudonymiser: Pseudonymiser, domain: str, placeholder: str
) -> None:
    assert pseudonymiser.pseudonymise(domain, pa.array([placeholder, placeholder])).to_pylist() == [None, None]
    assert pseudonymiser.pseudonymise_one(domain, placeholder) is None


def test_domains_are_separated(pseudonymiser: Pseudonymiser) -> None:
    digits = "460001234567890"
    assert pseudonymiser.pseudonymise_one("imsi", digits) != pseudonymiser.pseudonymise_one("account", digits)


def test_pseudonyms_depend_on_the_key() -> None:
    a = Pseudonymiser(Key.from_bytes(b"a" * 32, "pseudonym"))
    b = Pseudonymiser(Key.from_bytes(b"b" * 32, "pseudonym"))
    assert a.pseudonymise_one("imei", "352099001761481") != b.pseudonymise_one("imei", "352099001761481")
    assert a.key_id != b.key_id
    assert a.key_id == Pseudonymiser(Key.from_bytes(b"a" * 32, "pseudonym")).key_id


def test_vectorised_and_one_value_pseudonyms_agree(pseudonymiser: Pseudonymiser) -> None:
    values = ["352099001761481", "3C-5A-B4-12-34-56", "acct-1"]
    for domain, value in zip(["imei", "mac", "account"], values, strict=True):
        assert pseudonymiser.pseudonymise(domain, pa.array([value])).to_pylist() == [
            pseudonymiser.pseudonymise_one(domain, value)
        ]


_mac = st.lists(st.integers(0, 255), min_size=6, max_size=6)


@settings(max_examples=200, deadline=None)
@given(_mac, st.sampled_from([":", "-", ""]), st.booleans())
def test_mac_normalisation_is_stable(octets: list[int], sep: str, upper: bool) -> None:
    text = sep.join(f"{o:02x}" for o in octets)
    text = text.upper() if upper else text
    p = Pseudonymiser(Key.from_bytes(b"k" * 32, "pseudonym"))
    once = p.normalise("mac", pa.array([text]))
    assert p.normalise("mac", once).to_pylist() == once.to_pylist()


@settings(max_examples=200, deadline=None)
@given(st.ip_addresses())
def test_ip_normalisation_is_stable(ip: object) -> None:
    once = canonical_ip(str(ip))
    assert once is None or canonical_ip(once) == once


@settings(max_examples=100, deadline=None)
@given(st.from_regex(r"1[3-9][0-9]{9}", fullmatch=True), st.sampled_from(["", " ", "-"]))
def test_phone_normalisation_is_stable(number: str, sep: str) -> None:
    spaced = f"{number[:3]}{sep}{number[3:7]}{sep}{number[7:]}"
    once = canonical_phone(spaced, "CN")
    assert once is not None and canonical_phone(once, "CN") == once == canonical_phone(number, "CN")


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="0123456789-ABCDEFabcdef: .", max_size=24), st.sampled_from(["imei", "mac", "idfa", "imsi"]))
def test_every_normaliser_is_idempotent(text: str, domain: str) -> None:
    p = Pseudonymiser(Key.from_bytes(b"k" * 32, "pseudonym"))
    once = p.normalise(domain, pa.array([text]))
    assert p.normalise(domain, once).to_pylist() == once.to_pylist()


@settings(max_examples=300, deadline=None)
@given(st.ip_addresses())
def test_fast_ip_canonical_form_matches_ipaddress(ip: object) -> None:
    """The C-parsed canonical text equals the standard library's, for every address."""
    import ipaddress

    addr = ipaddress.ip_address(str(ip))
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
        addr = addr.ipv4_mapped
    expected = None if addr.is_unspecified else str(addr)
    assert canonical_ip.__wrapped__(str(ip)) == expected
    assert canonical_ip.__wrapped__(str(ip).upper()) == expected


def test_derived_keys_are_one_per_recipient_and_salt_and_rekey_is_hkdf_then_hmac() -> None:
    """A recipient's key is HKDF-SHA256 of the pseudonym key (RFC 5869, here through ``cryptography``'s HKDF and
    recomputed by hand), so re-keyed pseudonyms differ per recipient and per salt, and equal inputs stay equal."""
    master = os.urandom(32)
    p = Pseudonymiser(Key.from_bytes(master, "pseudonym"))
    salt = os.urandom(16)
    prk = hmac.new(salt, master, hashlib.sha256).digest()  # HKDF-Extract, then one block of HKDF-Expand
    expected = hmac.new(prk, b"devicerisk/entrust/acme" + b"\x01", hashlib.sha256).digest()
    acme = p.derive("entrust", "acme", salt)
    assert acme.material == expected and acme.key_id == Key.from_bytes(expected, "entrust").key_id
    keys = {
        acme.material,
        p.derive("entrust", "bravo", salt).material,
        p.derive("entrust", "acme", os.urandom(16)).material,
    }
    assert len(keys) == 3 and master not in keys
    values = pa.array(["a" * 32, None, "a" * 32, "b" * 32])
    out = pseudonymise.rekey(acme, values).to_pylist()
    assert out[0] == out[2] == hmac_sha256_hex(expected, "a" * 32)[:32] and out[1] is None and out[3] != out[0]
