"""Valid telemetry events and batch files for tests, built from the contract's shape."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import Any

import orjson

_ids = itertools.count(1)

PAYLOADS: dict[str, dict[str, Any]] = {
    "device_info": {
        "language": "zh-CN",
        "timezone": "Asia/Shanghai",
        "hardware": "qcom",
        "screen": "1080x2400",
        "rooted": False,
        "debuggable": False,
        "adb_enabled": False,
        "developer_mode": False,
        "device_name": "Li Wei's phone",
    },
    "operation": {
        "action": "search",
        "page": "search",
        "search_text": "parcel to Shenzhen",
        "user_agent": "Mozilla/5.0 (Linux; Android 14; 23127PN0CC) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.6099.144 Mobile Safari/537.36",
        "language": "zh-CN",
        "duration_ms": 1200,
    },
    "transaction": {
        "transaction_id": "T-20261120-0001",
        "amount": 129.5,
        "currency": "CNY",
        "channel": "wallet",
        "institution": "Alipay",
        "status": "success",
        "counterparty": "MERCHANT-88",
        "bank_account": "6222020200112233445",
    },
    "crash": {
        "kind": "crash",
        "exception_type": "java.lang.NullPointerException",
        "stack_trace": "java.lang.NullPointerException: user 13800138000\n\tat com.app.Main.run(Main.java:12)",
        "memory_mb": 512,
        "cpu_pct": 31.5,
        "startup_ms": 900,
    },
    "app_list": {"installed": ["com.tencent.mm", "com.topjohnwu.magisk"], "running": ["com.tencent.mm"]},
    "account": {
        "action": "register",
        "phone": "+86 138 0013 8000",
        "real_name": "Li Wei",
        "id_number": "110101199003074514",
    },
}


def event(event_type: str = "operation", **overrides: Any) -> dict[str, Any]:
    """A valid event of ``event_type``; keyword overrides replace top-level keys."""
    record: dict[str, Any] = {
        "schema_version": 1,
        "event_id": f"evt-{next(_ids):08d}",
        "event_type": event_type,
        "event_time": "2026-11-20T10:00:00.000+08:00",
        "account_id": "acct-000001",
        "app": {"platform": "android", "version": "5.2.1"},
        "device": {
            "model": "23127PN0CC",
            "manufacturer": "Xiaomi",
            "os": "Android",
            "os_version": "14",
            "imei": "352099001761481",
            "mac": "3C:5A:B4:12:34:56",
            "oaid": "1f2e3d4c-5b6a-7980-a1b2-c3d4e5f60718",
            "android_id": "a1b2c3d4e5f60718",
            "imsi": "460001234567890",
            "iccid": "89860012345678901238",
        },
        "network": {"type": "wifi", "ip": "203.0.113.45"},
        "payload": dict(PAYLOADS[event_type]),
    }
    record.update(overrides)
    return record


def line(record: dict[str, Any]) -> bytes:
    """One NDJSON line (without the newline)."""
    return orjson.dumps(record)


def write_batch(path: Path, records: list[dict[str, Any] | bytes], compress: bool = False) -> Path:
    """Write records (dicts, or raw bytes for broken lines) as an NDJSON batch."""
    data = b"".join((r if isinstance(r, bytes) else line(r)) + b"\n" for r in records)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def risk_matrix(n: int = 3000, seed: int = 1) -> tuple[Any, Any]:
    """A feature matrix where fraud shows in accounts per device (column 0) and the emulator flag."""
    import numpy as np

    from devicerisk.risk.features import FEATURE_NAMES

    rng = np.random.default_rng(seed)
    X = rng.poisson(0.3, size=(n, len(FEATURE_NAMES))).astype(float)
    fraud = rng.random(n) < 0.1
    X[fraud, 0] += rng.integers(8, 20, fraud.sum())
    X[:, FEATURE_NAMES.index("emulator_model")] = (fraud & (rng.random(n) < 0.5)).astype(float)
    return X, fraud.astype(int)
