"""Identifier factories: IMEIs, MACs, advertising IDs, SIM identities, phone and ID numbers, IPs.

All are computed once per device or account (never per event) from a seeded ``random.Random``,
so the heavier library calls (``phonenumbers``, ``stdnum``) stay off the hot path.
"""

from __future__ import annotations

import ipaddress
import random
import re
from datetime import date

import phonenumbers
from phonenumbers import PhoneNumberFormat
from stdnum import iban, luhn, verhoeff
from stdnum.cn import ric
from stdnum.th import pin

from devicerisk.synth.world import CN_AREAS, CN_AREAS_OLD, CN_BINS, GB_BANKS, ID_REGENCIES, Country

_VARIANT = {c: "89ab"[int(c, 16) & 3] for c in "0123456789abcdef"}


def uuid4(rng: random.Random) -> str:
    """A version-4 UUID string drawn from ``rng`` (``uuid.uuid4`` would use the OS entropy pool)."""
    h = f"{rng.getrandbits(128):032x}"
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{_VARIANT[h[16]]}{h[17:20]}-{h[20:]}"


def digits(rng: random.Random, n: int) -> str:
    """``n`` random decimal digits (leading zeros allowed)."""
    return f"{rng.randrange(10**n):0{n}d}"


def hexdigits(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


# -- handset identity ---------------------------------------------------------------------------


def imei(rng: random.Random, tac: str) -> str:
    """A 15-digit IMEI: TAC + 6-digit serial + Luhn check digit."""
    body = tac + digits(rng, 6)
    return body + luhn.calc_check_digit(body)


def imeisv(imei_: str, svn: int) -> str:
    """The 16-digit IMEISV of the same handset: TAC + serial (no check digit) + 2-digit software version."""
    return f"{imei_[:14]}{svn:02d}"


def corrupt_check_digit(imei_: str) -> str:
    """The same IMEI with a wrong check digit, as grey-market handsets and typo-ing SDKs report."""
    return imei_[:14] + str((int(imei_[14]) + 1 + int(imei_[13]) % 8) % 10)


def meid(rng: random.Random) -> str:
    """A 14-hex-digit MEID (CDMA handsets; region code A0-A1)."""
    return "A" + rng.choice("01") + hexdigits(rng, 12).upper()


def mac_octets(rng: random.Random, oui: str | None) -> bytes:
    """A universal MAC under vendor ``oui``, or a randomised one (locally administered, unicast)."""
    if oui is None:
        first = (rng.getrandbits(8) & 0xFC) | 0x02  # set the locally-administered bit, clear multicast
        return bytes([first, *rng.randbytes(5)])
    return bytes.fromhex(oui.replace(":", "")) + rng.randbytes(3)


def format_mac(octets: bytes, style: int) -> str:
    """Print a MAC the way different SDKs do: ``aa:bb:..``, ``AA-BB-..`` or Cisco ``aabb.ccdd.eeff``."""
    h = octets.hex()
    if style == 1:
        return "-".join(h[i : i + 2] for i in range(0, 12, 2)).upper()
    if style == 2:
        return f"{h[0:4]}.{h[4:8]}.{h[8:12]}"
    return ":".join(h[i : i + 2] for i in range(0, 12, 2))


def oaid(rng: random.Random, manufacturer: str) -> str:
    """An OAID in the vendor's format (Huawei: UUID; Xiaomi: 16 hex; OPPO/vivo and others: 64 hex)."""
    if manufacturer in ("HUAWEI", "HONOR"):
        return uuid4(rng)
    if manufacturer == "Xiaomi":
        return hexdigits(rng, 16)
    return hexdigits(rng, 64)


def imsi(rng: random.Random, mcc: str, mnc: str) -> str:
    return mcc + mnc + digits(rng, 15 - len(mcc) - len(mnc))


def iccid(rng: random.Random, prefix: str, length: int) -> str:
    """An ICCID of ``length`` digits (19 or 20) starting 89, Luhn check digit last."""
    body = prefix + digits(rng, length - 1 - len(prefix))
    return body + luhn.calc_check_digit(body)


# -- people ----------------------------------------------------------------------------------------


_TEMPLATES: dict[tuple[int, str, int], str] = {}
_TRUNK = {86: "", 1: ""}  # national trunk prefix ("0" elsewhere: 07400 123456)
_LEADING = {91: 6}  # India picks its grouping by up to six leading digits


def phone_formats(rng: random.Random, c: Country) -> tuple[str, str, str]:
    """One valid mobile number in E.164, international-spaced and compact national form."""
    number = None
    for _ in range(50):
        prefix = rng.choice(c.mobile_prefixes)
        national = prefix + digits(rng, c.national_len - len(prefix))
        candidate = phonenumbers.PhoneNumber(country_code=c.calling_code, national_number=int(national))
        if phonenumbers.is_valid_number(candidate):
            number = candidate
            break
    if number is None:  # should not happen with the prefix tables; fall back to the library's example
        number = phonenumbers.example_number_for_type(phonenumbers.region_code_for_country_code(c.calling_code), 1)
    national = str(number.national_number)
    # formatting is slow, so learn the grouping once per leading digits ("+86 ### #### ####") and reuse it
    key = (c.calling_code, national[: _LEADING.get(c.calling_code, 4)], len(national))
    template = _TEMPLATES.get(key)
    if template is None:
        spaced = phonenumbers.format_number(number, PhoneNumberFormat.INTERNATIONAL)
        template = _TEMPLATES[key] = f"+{c.calling_code}" + re.sub(r"\d", "#", spaced[len(str(c.calling_code)) + 1 :])
    digits_iter = iter(national)
    spaced = "".join(next(digits_iter) if ch == "#" else ch for ch in template)
    e164 = f"+{c.calling_code}{national}"
    compact = _TRUNK.get(c.calling_code, "0") + national
    return e164, spaced, compact


def real_name(rng: random.Random, c: Country) -> str:
    if c.code == "CN":
        return rng.choice(c.family) + rng.choice(c.given)
    return f"{rng.choice(c.given)} {rng.choice(c.family)}"


def id_number(rng: random.Random, c: Country, birth: date) -> str:
    """A well-formed (fake) national ID number for the country, with its check digit."""
    if c.code == "CN":
        areas = CN_AREAS if birth.year >= 1983 else CN_AREAS_OLD  # stdnum checks the code existed at birth
        body = f"{rng.choice(areas)}{birth:%Y%m%d}{digits(rng, 3)}"
        return body + ric.calc_check_digit(body + "0")  # the function skips the last char
    if c.code == "IN":  # Aadhaar: 12 digits, first 2-9, Verhoeff check digit
        body = str(rng.randint(2, 9)) + digits(rng, 10)
        full = body + verhoeff.calc_check_digit(body)
        return f"{full[:4]} {full[4:8]} {full[8:]}" if rng.random() < 0.5 else full
    if c.code == "ID":  # NIK: regency code + district + ddmmyy (day +40 for women) + serial
        day = birth.day + (40 if rng.random() < 0.5 else 0)
        serial = rng.randint(1, 9999)
        return f"{rng.choice(ID_REGENCIES)}{rng.randint(1, 30):02d}{day:02d}{birth:%m%y}{serial:04d}"
    if c.code == "TH":
        body = str(rng.randint(1, 8)) + digits(rng, 11)
        return body + pin.calc_check_digit(body)
    if c.code == "GB":  # National Insurance number; the QQ prefix is reserved for examples
        return f"QQ {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.randint(10, 99)} {rng.choice('ABCD')}"
    area = rng.randint(1, 665)  # US SSN: never 000, 666 or 9xx areas
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def bank_account(rng: random.Random, c: Country) -> str:
    """A bank account or card number in the country's usual notation."""
    if c.code == "CN":
        body = rng.choice(CN_BINS) + digits(rng, 12)
        return body + luhn.calc_check_digit(body)
    if c.code == "GB":
        bban = rng.choice(GB_BANKS) + digits(rng, 14)
        check = iban.calc_check_digits("GB00" + bban)
        return f"GB{check}{bban}" if rng.random() < 0.7 else f"{bban[4:6]}-{bban[6:8]}-{bban[8:10]} {bban[10:]}"
    if c.code == "US":
        routing = digits(rng, 8)
        weights = (3, 7, 1, 3, 7, 1, 3, 7)
        check = (10 - sum(int(d) * w for d, w in zip(routing, weights, strict=True)) % 10) % 10
        return f"{routing}{check} {digits(rng, 10)}"
    if c.code == "TH":
        n = digits(rng, 10)
        return f"{n[:3]}-{n[3]}-{n[4:9]}-{n[9]}"
    return str(rng.randint(1, 9)) + digits(rng, {"IN": 13, "ID": 9}.get(c.code, 11))


# -- networks ----------------------------------------------------------------------------------------


class IpPool:
    """Random addresses inside a fixed list of CIDR blocks (v4 and v6)."""

    def __init__(self, cidrs: tuple[str, ...]) -> None:
        nets = [ipaddress.ip_network(c) for c in cidrs]
        self._blocks = [(int(n.network_address), n.num_addresses, n.version) for n in nets]

    def address(self, rng: random.Random) -> str:
        base, size, version = rng.choice(self._blocks)
        return int_to_ip(base + rng.randrange(1, size - 1), version)

    def subnet24(self, rng: random.Random) -> int:
        """The base integer of a random /24 inside a v4 block."""
        base, size, version = rng.choice(self._blocks)
        assert version == 4, "subnets are drawn from IPv4 pools"
        return (base + rng.randrange(size)) & ~0xFF


def int_to_ip(value: int, version: int) -> str:
    if version == 4:
        return f"{value >> 24}.{(value >> 16) & 255}.{(value >> 8) & 255}.{value & 255}"
    return ipaddress.IPv6Address(value).compressed
