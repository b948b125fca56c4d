"""Minimisers: keep the coarse part of a value that carries risk signal and identifies nobody.

Each minimiser takes the raw column and returns named derived columns; the lake column is
``{field column}_{suffix}``. The contract names minimisers by their key in :data:`MINIMISERS`.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from stdnum import imsi as stdnum_imsi
from ua_parser import parse as parse_user_agent

from devicerisk.privacy.arrow_utils import map_distinct, null_where
from devicerisk.privacy.normalise import CANONICAL_IPV4, ipv6_text, packed_ipv6, parse_ip, parse_phone


@dataclass(frozen=True, slots=True)
class MinimiseContext:
    """What a minimiser may read besides its own column."""

    event_time: pa.Array  # timestamp[us, UTC], aligned with the column
    minor_age: int = 18
    phone_region: str = "CN"


Minimiser = Callable[[pa.Array, MinimiseContext], dict[str, pa.Array]]

ROOT_APPS = frozenset(
    {
        "com.topjohnwu.magisk",
        "eu.chainfire.supersu",
        "com.koushikdutta.superuser",
        "com.noshufou.android.su",
        "me.weishu.kernelsu",
        "com.kingroot.kinguser",
    }
)
HOOK_APPS = frozenset(
    {
        "de.robv.android.xposed.installer",
        "org.lsposed.manager",
        "org.meowcat.edxposed.manager",
        "re.frida.server",
        "com.saurik.substrate",
        "io.va.exposed",
        "com.github.shadowsocks.xposed",
    }
)
CLONER_APPS = frozenset(
    {
        "com.lbe.parallel.intl",
        "com.excelliance.dualaid",
        "com.parallel.space.lite",
        "io.virtualapp",
        "com.bly.dkplat",
        "com.ludashi.dualspace",
    }
)
EMULATOR_MODEL = (
    r"(?i)(sdk_gphone|android sdk built for|google_sdk|emulator|genymotion|bluestacks|\bnox|mumu|ldplayer|^generic)"
)
EMULATOR_HARDWARE = r"(?i)(ranchu|goldfish|vbox|ttvm|nox|android_x86)"


def _digits(values: pa.Array) -> pa.Array:
    return pc.replace_substring_regex(values, pattern=r"[^0-9]", replacement="")


def luhn_valid(digits: pa.Array) -> pa.Array:
    """Luhn check of each string of ASCII digits, vectorised (null and empty give null).

    Same answer as ``stdnum.luhn.is_valid``, without a Python call per value: the strings are
    left-padded with zeros (which do not change a Luhn sum) into one digit matrix.
    """
    if isinstance(digits, pa.ChunkedArray):
        digits = digits.combine_chunks()
    lengths = pc.utf8_length(digits)
    width = pc.max(lengths).as_py() or 0
    missing = pc.fill_null(pc.equal(lengths, 0), True)
    if width == 0:
        return pa.nulls(len(digits), pa.bool_())
    padded = pc.utf8_lpad(pc.if_else(missing, "", digits), width=width, padding="0").cast(pa.string())
    data = np.frombuffer(padded.buffers()[2], np.uint8, count=len(digits) * width, offset=padded.offset * width)
    matrix = data.reshape(len(digits), width).astype(np.int16) - ord("0")
    doubled = matrix[:, width - 2 :: -2] * 2  # every second digit from the right, left of the check digit
    total = matrix[:, width - 1 :: -2].sum(axis=1) + (doubled - 9 * (doubled > 9)).sum(axis=1)
    return null_where(pa.array(total % 10 == 0), missing)


def minimise_imei(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """TAC (type allocation code: the model), whether the format is sound, and the Luhn check."""
    digits = _digits(values)
    length = pc.utf8_length(digits)
    well_formed = pc.and_(
        pc.is_in(length, pa.array([14, 15, 16], pa.int32())), pc.invert(pc.match_substring_regex(digits, r"^0*$"))
    )
    checksum = luhn_valid(null_where(digits, pc.not_equal(length, 15)))
    return {
        "tac": null_where(pc.utf8_slice_codeunits(digits, 0, 8), pc.invert(well_formed)),
        "format_ok": well_formed,
        "checksum_ok": checksum,  # null where there is no check digit (IMEISV, bare 14 digits)
    }


def minimise_mac(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """Vendor OUI of universally administered MACs, and whether the MAC is randomised."""
    hexes = pc.replace_substring_regex(pc.utf8_lower(values), pattern=r"[^0-9a-f]", replacement="")
    hexes = null_where(hexes, pc.not_equal(pc.utf8_length(hexes), 12))
    second = pc.utf8_slice_codeunits(hexes, 1, 2)
    randomised = pc.is_in(second, pa.array(list("2367abef")))  # locally administered bit set
    multicast = pc.is_in(second, pa.array(list("13579bdf")))
    randomised = null_where(randomised, pc.is_null(hexes))
    oui = null_where(pc.utf8_slice_codeunits(hexes, 0, 6), pc.or_(randomised, multicast))
    return {"oui": oui, "randomised": randomised}


@lru_cache(maxsize=4096)
def _imsi_home(prefix: str) -> tuple[str | None, str | None, str | None]:
    try:
        info = stdnum_imsi.info(prefix.ljust(15, "0"))
    except Exception:  # unknown MCC/MNC: keep nothing rather than guess
        return None, None, None
    return info.get("mcc"), info.get("mnc"), (info.get("cc") or "").upper() or None


def minimise_imsi(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """SIM home network: MCC, MNC and country; the subscriber number is not kept."""
    prefix = pc.utf8_slice_codeunits(_digits(values), 0, 6)
    prefix = null_where(prefix, pc.less(pc.utf8_length(prefix), 5))
    homes = map_distinct(prefix, lambda p: "|".join(x or "" for x in _imsi_home(p)), pa.string())
    parts = pc.split_pattern(homes, "|")
    return {
        name: pc.if_else(pc.equal(pc.list_element(parts, i), ""), None, pc.list_element(parts, i))
        for i, name in enumerate(("mcc", "mnc", "country"))
    }


def minimise_iccid(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """Whether the ICCID is well formed (telecom prefix 89 and a valid Luhn check digit)."""
    digits = _digits(pc.utf8_rtrim(pc.utf8_upper(values), characters="F"))
    length = pc.utf8_length(digits)
    shaped = pc.and_(pc.starts_with(digits, "89"), pc.and_(pc.greater_equal(length, 18), pc.less_equal(length, 20)))
    return {"valid": null_where(pc.and_(shaped, pc.fill_null(luhn_valid(digits), False)), pc.is_null(values))}


@lru_cache(maxsize=1 << 16)
def ip_prefix(text: str) -> str | None:
    """The /24 (IPv4) or /48 (IPv6) network of an address, as text."""
    if (packed := packed_ipv6(text)) is not None and not packed.startswith(bytes(10) + b"\xff\xff"):
        return ipv6_text(packed[:6] + bytes(10)) + "/48"
    if (ip := parse_ip(text)) is None:
        return None
    bits = 24 if ip.version == 4 else 48
    return str(ipaddress.ip_network(f"{ip}/{bits}", strict=False))


def minimise_ip(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """The network prefix (/24 for IPv4, /48 for IPv6) and the IP version."""
    canonical_v4 = pc.fill_null(pc.match_substring_regex(values, CANONICAL_IPV4), False)
    slow = map_distinct(null_where(values, canonical_v4), ip_prefix, pa.string())
    fast = pc.replace_substring_regex(values, pattern=r"\.[0-9]+$", replacement=".0/24")
    prefix = pc.if_else(canonical_v4, fast, slow)
    version = pc.if_else(pc.match_substring(prefix, ":"), 6, 4).cast(pa.int8())
    return {"prefix": prefix, "version": null_where(version, pc.is_null(prefix))}


#: Browser and OS families kept as they are; anything else (including the free text that ua-parser
#: returns for generic bots, e.g. "13800138000Bot") becomes "Other", so no user-typed text survives.
KNOWN_BROWSERS = frozenset(
    {
        "Chrome",
        "Chrome Mobile",
        "Chrome Mobile iOS",
        "Chrome Mobile WebView",
        "Chromium",
        "Safari",
        "Mobile Safari",
        "Mobile Safari UI/WKWebView",
        "Firefox",
        "Firefox Mobile",
        "Firefox iOS",
        "Edge",
        "Edge Mobile",
        "Opera",
        "Opera Mobile",
        "Samsung Internet",
        "UC Browser",
        "QQ Browser",
        "QQ Browser Mobile",
        "MiuiBrowser",
        "HuaweiBrowser",
        "WeChat",
        "Baidu Box App",
        "Sogou Explorer",
        "Yandex Browser",
        "Vivo Browser",
        "Facebook",
        "Instagram",
        "Googlebot",
        "bingbot",
        "HeadlessChrome",
        "Electron",
        "IE",
        "IE Mobile",
        "Python Requests",
        "curl",
        "okhttp",
        "Apache-HttpClient",
        "Go-http-client",
    }
)
KNOWN_OS = frozenset({"Android", "iOS", "Windows", "Mac OS X", "Linux", "Ubuntu", "Chrome OS", "HarmonyOS", "iPadOS"})


@lru_cache(maxsize=1 << 12)
def _ua_families(text: str) -> str:
    result = parse_user_agent(text)
    browser = result.user_agent.family if result.user_agent else "Other"
    os_family = result.os.family if result.os else "Other"
    bot = result.device is not None and result.device.family == "Spider"
    browser = browser if browser in KNOWN_BROWSERS else "Other"
    os_family = os_family if os_family in KNOWN_OS else "Other"
    return f"{browser}|{os_family}|{'1' if bot else '0'}"


def minimise_user_agent(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """Browser and OS family from a fixed list, and whether it is a bot; versions and free text are not kept."""
    parts = pc.split_pattern(map_distinct(values, _ua_families, pa.string()), "|")
    return {
        "browser": pc.list_element(parts, 0),
        "os": pc.list_element(parts, 1),
        "bot": pc.equal(pc.list_element(parts, 2), "1"),
    }


def minimise_emulator_model(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """Whether the model string is an emulator's."""
    return {"emulator": pc.match_substring_regex(values, EMULATOR_MODEL)}


def minimise_emulator_hardware(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """Whether the hardware string is an emulator's."""
    return {"emulator": pc.match_substring_regex(values, EMULATOR_HARDWARE)}


_CODE_NAME = re.compile(r"[A-Za-z_$][\w$]*(?:\.[A-Za-z_$][\w$]*)*")
_FRAME = re.compile(r"(?:at\s+)?([\w$.]+\.[\w$<>]+)\(")


def stack_signature(trace: str) -> str:
    """A stable digest of the exception type and top frames; messages and line numbers are dropped."""
    first_line = trace.strip().splitlines()[0] if trace.strip() else ""
    exception = first_line.split(":", 1)[0].strip()
    if not _CODE_NAME.fullmatch(exception):  # a message, not a class name: keep nothing of it
        exception = "?"
    frames = _FRAME.findall(trace)[:5]
    return hashlib.sha256("|".join([exception, *frames]).encode()).hexdigest()[:16]


def minimise_stack_trace(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """A signature that groups identical crashes without keeping the free text."""
    return {"signature": map_distinct(values, stack_signature, pa.string())}


def _any_in(lists: pa.Array, names: frozenset[str]) -> pa.Array:
    flat = pc.list_flatten(lists)
    parents = pc.list_parent_indices(lists).to_numpy()
    hits = pc.fill_null(pc.is_in(flat, pa.array(sorted(names))), False).to_numpy(zero_copy_only=False)
    counts = np.bincount(parents[hits], minlength=len(lists))
    return null_where(pa.array(counts > 0), pc.is_null(lists))


def minimise_app_list(values: pa.Array, _: MinimiseContext) -> dict[str, pa.Array]:
    """Counts and risky-app flags; the list itself is not kept."""
    return {
        "count": pc.list_value_length(values).cast(pa.int32()),
        "root_app": _any_in(values, ROOT_APPS),
        "hook_app": _any_in(values, HOOK_APPS),
        "cloner_app": _any_in(values, CLONER_APPS),
    }


def minimise_phone(values: pa.Array, ctx: MinimiseContext) -> dict[str, pa.Array]:
    """The country the number belongs to."""
    return {"country": map_distinct(values, lambda t: parse_phone(t, ctx.phone_region)[1], pa.string())}


def minimise_minor(values: pa.Array, ctx: MinimiseContext) -> dict[str, pa.Array]:
    """Whether the person may have been a minor at the event's time; the birth year is not kept.

    With a birth year only, age is known to a year: someone who turns 18 this year may still be 17,
    so they count as a possible minor (7.2 protects in case of doubt).
    """
    age_at_most = pc.subtract(pc.year(ctx.event_time), values.cast(pa.int64()))
    return {"minor": pc.less_equal(age_at_most, ctx.minor_age)}


MINIMISERS: dict[str, Minimiser] = {
    "imei": minimise_imei,
    "mac": minimise_mac,
    "imsi": minimise_imsi,
    "iccid": minimise_iccid,
    "ip": minimise_ip,
    "user_agent": minimise_user_agent,
    "emulator_model": minimise_emulator_model,
    "emulator_hardware": minimise_emulator_hardware,
    "stack_signature": minimise_stack_trace,
    "app_list": minimise_app_list,
    "phone": minimise_phone,
    "minor": minimise_minor,
}

#: Minimisers that read the event's context (its time), so they run row by row.
ROW_CONTEXT_MINIMISERS = frozenset({"minor"})
