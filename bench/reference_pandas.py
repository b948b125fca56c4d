"""Reference (b): a straightforward pandas implementation of the same treatment.

Per row: ``json.loads``, the contract's per-record validation, then per field the same normalisation,
HMAC-SHA256 pseudonyms and minimisers, in plain Python; then a DataFrame written to Parquet. It is
what one would write first; the benchmark compares devicerisk's columnar pipeline against it.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
from stdnum import luhn
from ua_parser import parse as parse_ua

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action
from devicerisk.ingest.read import read_batch
from devicerisk.ingest.validate import record_reason
from devicerisk.privacy.minimise import CLONER_APPS, EMULATOR_HARDWARE, EMULATOR_MODEL, HOOK_APPS, ROOT_APPS
from devicerisk.privacy.minimise import stack_signature as signature
from devicerisk.privacy.normalise import canonical_ip, canonical_phone


def _digits(v: str) -> str:
    return re.sub(r"[^0-9]", "", v)


def normalise(domain: str, v: str) -> str | None:
    if domain == "imei":
        d = _digits(v)
        return d[:14] if len(d) in (14, 15, 16) and set(d) != {"0"} else None
    if domain == "mac":
        h = re.sub(r"[^0-9a-f]", "", v.lower())
        return h if len(h) == 12 and h not in {"020000000000", "000000000000", "ffffffffffff"} else None
    if domain in ("idfa", "idfv", "oaid", "android_id"):
        t = re.sub(r"[\s{}]", "", v.lower())
        return None if not t or set(t) <= {"0", "-"} else t
    if domain in ("imsi", "iccid", "meid"):
        d = _digits(v.upper().rstrip("F"))
        return d or None
    if domain == "ip":
        return canonical_ip(v)
    if domain == "phone":
        return canonical_phone(v, "CN")
    return v.strip() or None


def minimise(name: str, v: Any, event_year: int) -> dict[str, Any]:
    if name == "imei":
        d = _digits(v)
        ok = len(d) in (14, 15, 16) and set(d) != {"0"}
        return {
            "tac": d[:8] if ok else None,
            "format_ok": ok,
            "checksum_ok": luhn.is_valid(d) if len(d) == 15 else None,
        }
    if name == "mac":
        h = re.sub(r"[^0-9a-f]", "", v.lower())
        rnd = len(h) == 12 and int(h[1], 16) & 2 == 2
        return {"oui": h[:6] if len(h) == 12 and not rnd else None, "randomised": rnd if len(h) == 12 else None}
    if name == "imsi":
        d = _digits(v)
        return {"mcc": d[:3], "mnc": d[3:5], "country": None}
    if name == "iccid":
        d = _digits(v)
        return {"valid": d.startswith("89") and luhn.is_valid(d)}
    if name == "ip":
        try:
            ip = ipaddress.ip_address(v)
            net = ipaddress.ip_network(f"{ip}/{24 if ip.version == 4 else 48}", strict=False)
            return {"prefix": str(net), "version": ip.version}
        except ValueError:
            return {"prefix": None, "version": None}
    if name == "user_agent":
        r = parse_ua(v)
        return {"browser": r.user_agent.family if r.user_agent else None, "os": r.os.family if r.os else None}
    if name == "emulator_model":
        return {"emulator": re.search(EMULATOR_MODEL, v) is not None}
    if name == "emulator_hardware":
        return {"emulator": re.search(EMULATOR_HARDWARE, v) is not None}
    if name == "stack_signature":
        return {"signature": signature(v)}
    if name == "app_list":
        s = set(v)
        return {
            "count": len(v),
            "root_app": bool(s & ROOT_APPS),
            "hook_app": bool(s & HOOK_APPS),
            "cloner_app": bool(s & CLONER_APPS),
        }
    if name == "phone":
        return {"country": None}
    if name == "minor":
        return {"minor": event_year - v < 18}
    raise ValueError(name)


def _get(record: dict, path: str) -> Any:
    node: Any = record
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def treat_row(record: dict, key: bytes) -> dict[str, Any]:
    out: dict[str, Any] = {}
    event_time = datetime.fromisoformat(record["event_time"])
    for field in FIELDS:
        if not field.applies_to(record["event_type"]):
            continue
        value = _get(record, field.path)
        for t in field.treatments:
            if t.action is Action.KEEP:
                out[field.column] = event_time if field.path == "event_time" else value
            elif value is None:
                continue
            elif t.action is Action.PSEUDONYMISE:
                subkey = hmac.new(key, b"devicerisk/pseudonym/" + t.name.encode(), hashlib.sha256).digest()
                normal = normalise(t.name, value)
                out[f"{field.column}_pid"] = (
                    None if normal is None else hmac.new(subkey, normal.encode(), hashlib.sha256).hexdigest()[:32]
                )
            elif t.action is Action.MINIMISE:
                for suffix, v in minimise(t.name, value, event_time.year).items():
                    out[f"{field.column}_{suffix}"] = v
    out["event_date"] = event_time.date()
    return out


def run(paths: list[Path], out: Path, key: bytes) -> int:
    """Treat every valid record of ``paths`` row by row and write one Parquet file per batch."""
    rows_total = 0
    out.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(paths):
        batch = read_batch(path)
        rows, seen = [], set()
        for line in batch.lines:
            if record_reason(line) is not None:
                continue
            record = json.loads(line)
            if record["event_id"] in seen:
                continue
            seen.add(record["event_id"])
            rows.append(treat_row(record, key))
        frame = pd.DataFrame(rows)
        frame.to_parquet(out / f"part-{i:05d}.parquet", index=False)
        rows_total += len(frame)
    return rows_total
