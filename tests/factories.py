"""Shared test builders: valid telemetry events and batch files built from the contract's shape, and the risk
tests' lake-shaped rows, labels, feature checks and champion model."""

from __future__ import annotations

import gzip
import itertools
import math
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from devicerisk.contract.schema import lake_schema
from devicerisk.governance import verification
from devicerisk.governance.verification import Claim, Method
from devicerisk.risk import features as F
from devicerisk.risk import signals, windows
from devicerisk.risk.model import Thresholds, fit_unsupervised
from devicerisk.risk.service import _model_meta
from devicerisk.store import lake, registry

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


# -- risk: lake-shaped rows, labels, features checked on both engines, a champion --------------------------------
T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)
ACCT, OTHER = "a" * 32, "b" * 32
DEV = "d" * 32
NET = "10.1.2.0/24"
CP = "c" * 32


def events(rows: list[dict[str, Any]]) -> pa.Table:
    """Lake-shaped event rows: every feature column, null unless given."""
    schema = lake_schema()
    fields = [schema.field(c) for c in F.EVENT_COLUMNS]
    return pa.table({f.name: pa.array([r.get(f.name) for r in rows], f.type) for f in fields})


def txn(when: datetime, acct: str = ACCT, dev: str = DEV, **extra: Any) -> dict[str, Any]:
    base = {
        "event_id": f"e-{when.isoformat()}-{acct[:2]}-{extra.get('status', '')}",
        "event_type": "transaction",
        "event_time": when,
        "account_id_pid": acct,
        "device_android_id_pid": dev,
        "amount": 100.0,
        "status": "success",
        "transaction_id_pid": f"t-{when.isoformat()}-{acct[:2]}",
        "app_platform": "android",
        "app_version": "9.4.1",
    }
    return base | extra


def registered(when: datetime, acct: str = ACCT, dev: str = DEV, **extra: Any) -> dict[str, Any]:
    """A lake-shaped account registration on device ``dev``."""
    base = {
        "event_id": "reg",
        "event_type": "account",
        "event_time": when,
        "account_id_pid": acct,
        "action": "register",
        "device_android_id_pid": dev,
    }
    return base | extra


def labels(rows: list[tuple[str, str, datetime]]) -> pa.Table:
    return pa.table(
        {
            "subject_type": pa.array([r[0] for r in rows], pa.string()),
            "subject_id_pid": pa.array([r[1] for r in rows], pa.string()),
            "label": pa.array(["fraud"] * len(rows), pa.string()),
            "reported_at": pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC")),
        }
    )


def features_of(rows: list[dict[str, Any]], lab: pa.Table | None = None, at: datetime = T0) -> dict[str, Any]:
    """The features of the transaction at ``at`` (the SQL's, checked against the C engine's on the way)."""
    table = events(rows)
    out = F.transaction_features(table, lab, at, at + timedelta(seconds=1))
    assert out.num_rows == 1
    got = out.to_pylist()[0]
    _, X = windows.transaction_features(signals.signals(table), lab, at, at + timedelta(seconds=1))
    engine = dict(zip(F.FEATURE_NAMES, X[0].tolist(), strict=True))
    for name in F.FEATURE_NAMES:
        want = got[name]
        assert math.isnan(engine[name]) if want is None else engine[name] == pytest.approx(want), name
    return got


def champion(models_dir: Path) -> None:
    """An unsupervised champion for both scores (quick to fit; scoring does not care which kind it is)."""
    X, _ = risk_matrix(500, seed=5)
    model = fit_unsupervised(X, list(F.FEATURE_NAMES))
    meta = {n: _model_meta(model, Thresholds(50.0, 90.0), {}) for n in ("transaction", "account")}
    registry.save(models_dir, "v1", {"transaction": model.estimator, "account": model.estimator}, meta)
    registry.promote(models_dir, "v1")


def ingest(lake_dir: Path, rows: list[dict[str, Any]], batch: str) -> None:
    table = events(rows)
    table = table.append_column("event_date", pc.cast(table.column("event_time"), pa.date32()))
    lake.append(lake_dir, lake.EVENTS, table, batch, {"rows": table.num_rows})


def accounts(n: int, when: datetime) -> list[dict[str, Any]]:
    return [txn(when + timedelta(minutes=i), acct=f"{i:032x}") for i in range(n)]


@contextmanager
def served(app: Any) -> Iterator[str]:
    """``app`` served by a real uvicorn server on loopback (in a thread of this process); yields its address."""
    import threading
    import time

    import uvicorn

    port = free_port()
    # lifespan on: the app's shutdown stops what it started (the score-now scorer's refreshing thread); a thread
    # left running into the interpreter's exit can crash it there
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)


def landing_events(landing_dir: Path, event_type: str | None = None) -> Iterator[dict[str, Any]]:
    """The raw telemetry records of the landing zone (as the generator wrote them), in file order."""
    for path in sorted((landing_dir / "telemetry").glob("*.ndjson*")):
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "rb") as fh:
            for raw in fh:
                record = orjson.loads(raw)
                if event_type is None or record.get("event_type") == event_type:
                    yield record


def served_transaction(settings: Any, need_phone: bool = False) -> tuple[dict[str, Any], str | None]:
    """A raw transaction event of the landing zone that the serving snapshots know: its transaction, its account
    and its device (by IMEI); with ``need_phone``, of an account whose current phone is the one it registered.
    Returns the event and that phone."""
    from devicerisk.ingest.runtime import ingest_context
    from devicerisk.store import serving

    pseudonym = ingest_context(settings).pseudonymiser.pseudonymise_one
    tables = {n: serving.read(settings.serving_dir, n) for n in serving.SNAPSHOTS}
    accounts, transactions, devices = (tables[n] for n in (serving.ACCOUNTS, serving.TRANSACTIONS, serving.DEVICES))
    assert accounts is not None and transactions is not None and devices is not None
    phone_of = dict(zip(*accounts.select(["account_id_pid", "phone_pid"]).to_pydict().values(), strict=True))
    txns = set(transactions.column("transaction_id_pid").to_pylist())
    device_ids = set(pc.list_flatten(devices.column("device_ids")).to_pylist()) - {None}  # every id of a device
    phones = {
        e["account_id"]: e["payload"]["phone"]
        for e in landing_events(settings.landing_dir, "account")
        if e["payload"].get("action") == "register" and e["payload"].get("phone")
    }
    for e in landing_events(settings.landing_dir, "transaction"):
        account = pseudonym("account", e["account_id"])
        if (
            account in phone_of
            and pseudonym("transaction", e["payload"]["transaction_id"]) in txns
            and pseudonym("imei", e["device"].get("imei") or "") in device_ids
        ):
            phone = phones.get(e["account_id"])
            if not need_phone or (phone is not None and phone_of[account] == pseudonym("phone", phone)):
                return e, phone
    raise LookupError("no transaction of the landing zone is in every serving snapshot")


# -- lookup: serving snapshot rows as the score runs publish them --------------------------------------------------
def pid(n: int) -> str:
    """A well-formed pseudonym (32 hex digits) numbered ``n``."""
    return f"{n:032x}"


def account_snapshot(pids: list[str], scores: list[float], as_of: datetime, **columns: list[Any]) -> pa.Table:
    """Rows of the account snapshot: one per account, scored as of ``as_of``; extra ``columns`` replace defaults."""
    n = len(pids)
    levels = ["highest" if s >= 90 else "elevated" if s >= 50 else "normal" for s in scores]
    base: dict[str, Any] = {
        "account_id_pid": pa.array(pids, pa.string()),
        "as_of": pa.array([as_of] * n, pa.timestamp("us", tz="UTC")),
        "event_date": pa.array([as_of.date()] * n, pa.date32()),
        "score": pa.array(scores, pa.float64()),
        "level": pa.array(levels, pa.string()),
        "reasons": pa.array([[f"reason of {p[-4:]}"] for p in pids], pa.list_(pa.string())),
        "model_version": pa.array(["v1"] * n, pa.string()),
        "model_kind": pa.array(["supervised"] * n, pa.string()),
        "scored_at": pa.array([as_of] * n, pa.timestamp("us", tz="UTC")),
        "phone_pid": pa.array([None] * n, pa.string()),
    }
    return pa.table(base | {k: pa.array(v, base[k].type) for k, v in columns.items()})


def transaction_snapshot(rows: list[tuple[str, str, datetime, float]]) -> pa.Table:
    """Rows of the transaction snapshot from (transaction pid, account pid, event time, score)."""
    times = pa.array([r[2] for r in rows], pa.timestamp("us", tz="UTC"))
    return pa.table(
        {
            "event_id": pa.array([f"e{i}" for i in range(len(rows))], pa.string()),
            "transaction_id_pid": pa.array([r[0] for r in rows], pa.string()),
            "account_id_pid": pa.array([r[1] for r in rows], pa.string()),
            "event_time": times,
            "event_date": pc.cast(times, pa.date32()),
            "score": pa.array([r[3] for r in rows], pa.float64()),
            "level": pa.array(["highest" if r[3] >= 90 else "normal" for r in rows], pa.string()),
            "reasons": pa.array([[f"txn {r[0][-4:]}"] for r in rows], pa.list_(pa.string())),
            "model_version": pa.array(["v1"] * len(rows), pa.string()),
            "model_kind": pa.array(["supervised"] * len(rows), pa.string()),
            "scored_at": times,
        }
    )


def refs() -> Any:
    """Masked references under a fresh random key."""
    import secrets

    from devicerisk.lookup.refs import Refs
    from devicerisk.privacy.keys import Key

    return Refs(Key.from_bytes(secrets.token_bytes(32), "pseudonym"))


def free_port() -> int:
    """A TCP port free on loopback now (for a server a test starts)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def process_tree(pid: int) -> list[psutil.Process]:
    """The processes below ``pid`` (none if it is gone)."""
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie does not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# -- incidents: a small lake built by the real synth generator and ingest --------------------------------------------
QUARANTINED_ACCOUNT = "acct-quarantined"


def synth_lake(settings: Any, accounts: int = 60, days: int = 3, seed: int = 11) -> None:
    """Synthetic telemetry ingested into the lake of ``settings`` (its raw batches stay in landing), plus one batch
    whose only record is quarantined: a transaction of ``QUARANTINED_ACCOUNT`` with an amount that is no number."""
    from devicerisk.ingest.pipeline import ingest_batch
    from devicerisk.ingest.runtime import ingest_context
    from devicerisk.store import landing
    from devicerisk.synth import SynthConfig, generate

    generate(settings.landing_dir, SynthConfig(accounts=accounts, days=days, seed=seed))
    bad = event("transaction", account_id=QUARANTINED_ACCOUNT)
    bad["payload"] = {**bad["payload"], "amount": "not a number"}
    write_batch(settings.landing_dir / landing.TELEMETRY / "zz-quarantined.ndjson", [bad])
    ctx = ingest_context(settings)
    for path in landing.pending_files(settings.landing_dir):
        ingest_batch(path, ctx)


#: The command-line options of :func:`verified`, for ``devicerisk request ...``.
VERIFIED_OPTIONS = ("--verified-by", "test-officer", "--method", "in_person")


def verified(by: str = "test-officer") -> Claim:
    """An identity verification as the privacy officer records one made in person (6.4.2): what a request that is
    not about verification itself gives."""
    return verification.manual(Method.IN_PERSON, by)


def copy_lake(settings: Any, root: Path) -> Any:
    """A copy of the lake of ``settings`` (its data and its key files) under ``root``, and settings that point at it:
    a test that writes to it, or destroys its keys, leaves the original as it was."""
    import shutil

    shutil.copytree(settings.data_dir, root / "data", symlinks=True)
    shutil.copytree(settings.secrets_dir, root / "secrets")
    keys = root / "secrets"
    return settings.model_copy(
        update={
            "data_dir": root / "data",
            "secrets_dir": keys,
            "pseudonym_key_file": keys / "pseudonym.key",
            "quarantine_key_file": keys / "quarantine.key",
            "audit_key_file": keys / "audit.key",
            "verification_key_file": keys / "verification.key",
        }
    )
