"""The hot path: turning one event's parts into one NDJSON line, plus transactions and labels.

Envelope fragments are precomputed JSON text; only the event id, time and payload are made per
event, and each line is one f-string (encoded to UTF-8 once per batch chunk by the writer).
"""

from __future__ import annotations

import heapq
import random
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from devicerisk.contract.fields import EVENT_TYPES, FIELDS
from devicerisk.synth import ids
from devicerisk.synth.clock import DAY_MS, HOUR_MS, Clock
from devicerisk.synth.config import LOOKALIKE_TAGS, REPORT_P
from devicerisk.synth.payments import N_MERCHANTS, POPULAR, POPULAR_SHARE
from devicerisk.synth.population import Account, Device, NetPlan, dumps

if {e.name for e in EVENT_TYPES} != {"device_info", "operation", "transaction", "crash", "app_list", "account"}:
    raise ImportError("the contract's event types changed; teach the generator the new ones")
CHANNELS: tuple[str, ...] = next(f.enum for f in FIELDS if f.path == "payload.channel") or ()

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
#: where the 32 hex digits of a UUID go in its 36-character text (the dashes sit at 8, 13, 18 and 23)
_UUID_POS = np.array([i for i in range(36) if i not in (8, 13, 18, 23)])
_CELL = ("4g", "4g", "4g", "5g", "5g", "3g")


def uuid4_block(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` version-4 UUID strings at once: vectorised, since one per event is the hot path's costliest step."""
    raw = rng.integers(0, 256, size=(n, 16), dtype=np.uint8)
    raw[:, 6] = (raw[:, 6] & 0x0F) | 0x40  # version 4
    raw[:, 8] = (raw[:, 8] & 0x3F) | 0x80  # RFC 4122 variant
    text = np.full((n, 37), ord("-"), dtype=np.uint8)
    text[:, 36] = ord(" ")
    text[:, _UUID_POS[0::2]] = _HEX[raw >> 4]
    text[:, _UUID_POS[1::2]] = _HEX[raw & 0x0F]
    return text.tobytes().decode("ascii").split()


class LabelSink:
    """Fraud-team feedback, kept in a heap by ``reported_at`` and released as simulated time passes.

    Released fraud reports on accounts are also remembered (``take_reported``): the platform acts on them.
    """

    def __init__(self, rng: random.Random, clock: Clock) -> None:
        self.rng = rng
        self.clock = clock
        self._heap: list[tuple[int, int, bytes, int | None]] = []
        self._seq = 0
        self._reported: list[int] = []

    def add(
        self,
        subject_type: str,
        subject_id: str,
        fraud_type: str | None,
        event_ms: int,
        account: int,
        fraud_from_ms: int | None = None,
        reported_ms: int | None = None,
    ) -> int:
        """Queue one label; it is reported 1-14 days after ``event_ms`` unless ``reported_ms`` says when.
        Returns the reported time (ms)."""
        r = self.rng
        # whole seconds, rounded up so never early
        reported = reported_ms or -(-(event_ms + DAY_MS + r.randrange(13 * DAY_MS)) // 1000) * 1000
        row: dict[str, Any] = {
            "label_id": ids.uuid4(r),
            "subject_type": subject_type,
            "subject_id": subject_id,
            "label": "fraud" if fraud_type else "legitimate",
        }
        if fraud_type:
            row["fraud_type"] = fraud_type
        row["reported_at"] = self.clock.utc(reported)
        if fraud_from_ms is not None:  # the account came into fraudulent hands then; without it, it always was
            row["fraud_from"] = self.clock.utc(fraud_from_ms)
        self._seq += 1
        closes = account if fraud_type and subject_type == "account" else None  # the platform closes a reported account
        heapq.heappush(self._heap, (reported, self._seq, orjson.dumps(row) + b"\n", closes))
        return reported

    def release(self, until_ms: int | None) -> list[bytes]:
        """Labels reported before ``until_ms`` (all when None), in reporting order."""
        out = []
        while self._heap and (until_ms is None or self._heap[0][0] < until_ms):
            _, _, line, account = heapq.heappop(self._heap)
            out.append(line)
            if account is not None:
                self._reported.append(account)
        return out

    def take_reported(self) -> list[int]:
        """Accounts (by index) reported as fraudulent since the last call."""
        out, self._reported = self._reported, []
        return out


class Emitter:
    """Makes event lines into ``buf`` as (arrival ms, line) pairs."""

    def __init__(
        self,
        rng: random.Random,
        id_rng: np.random.Generator,
        clock: Clock,
        labels: LabelSink,
        truth: Callable[[dict[str, Any]], None],
        late_rate: float,
    ) -> None:
        self.rng = rng
        self.id_rng = id_rng
        self._ids: list[str] = []
        self.clock = clock
        self.labels = labels
        self.truth = truth
        self.late_rate = late_rate
        self.buf: list[tuple[int, str]] = []
        self.txn_seq = 0
        self.merchants = [f"mch_{rng.randrange(10**8):08d}" for _ in range(N_MERCHANTS)]
        self.hijacked: dict[int, tuple[int, int]] = {}  # merchant index -> (start, end): honest customers stay away

    def merchant(self, ms: int) -> str:
        """A merchant for an honest payment: a popular one a quarter of the time; never a hijacked one."""
        r = self.rng
        while True:
            i = int(r.random() * POPULAR) if r.random() < POPULAR_SHARE else int(r.random() * N_MERCHANTS)
            span = self.hijacked.get(i)
            if span is None or not span[0] <= ms < span[1]:
                return self.merchants[i]

    # -- envelope ----------------------------------------------------------------------------------

    def network(self, plan: NetPlan, dev: Device, ms: int) -> str:
        r = self.rng
        if plan.fixed_type:
            return f'{{"type":"{plan.fixed_type}","ip":"{plan.home_ip}"}}'
        if plan.trip is not None and plan.trip[0] <= ms < plan.trip[1]:  # abroad: hotel Wi-Fi or roaming
            kind, ip = ("wifi" if r.random() < 0.5 else "4g"), plan.trip[2].address(r)
        elif r.random() < plan.wifi_p:
            kind, ip = "wifi", plan.home_ip
        else:
            kind, ip = _CELL[int(r.random() * 6)], plan.cell.address(r)
        if dev.platform == "web":  # browsers rarely expose the connection type
            return f'{{"ip":"{ip}"}}'
        return f'{{"type":"{kind}","ip":"{ip}"}}'

    def env(self, acc: Account, dev: Device, ms: int, logged_in: bool = True, net: NetPlan | None = None) -> str:
        """``"account_id":..,"app":..,"device":..,"network":..`` for one session."""
        frag = dev.frags[1] if dev.alt_p and self.rng.random() < dev.alt_p else dev.frags[0]
        account = acc.id_json if logged_in else "null"
        return f'"account_id":{account},{frag},"network":{self.network(net or acc.net, dev, ms)}'

    # -- events ----------------------------------------------------------------------------------

    def emit(self, ms: int, etype: str, env: str, dev: Device, payload: str) -> None:
        r = self.rng
        ids = self._ids
        if not ids:
            ids += uuid4_block(self.id_rng, 4096)
        line = (
            f'{{"schema_version":1,"event_id":"{ids.pop()}","event_type":"{etype}",'
            f'"event_time":"{self.clock.fmt(ms, dev.tz, dev.time_style)}",{env},"payload":{payload}}}\n'
        )
        arrival = ms
        if r.random() < self.late_rate:  # buffered offline on the handset, delivered later
            arrival += int(r.expovariate(1.0 / (2 * HOUR_MS)))
        self.buf.append((arrival, line))

    def account_event(self, ms: int, env: str, dev: Device, payload: dict[str, Any]) -> None:
        self.emit(ms, "account", env, dev, dumps(payload))

    def amount(self, acc: Account, scale: float) -> float:
        c = acc.country
        value = c.amount_median * acc.amount_scale * scale * self.rng.lognormvariate(0.0, 0.9)
        if c.decimals == 0:
            return float(max(100, round(value, -2)))
        return max(0.01, round(value, c.decimals))

    def transaction(
        self,
        acc: Account,
        dev: Device,
        env: str,
        ms: int,
        amount: float,
        *,
        status: str = "success",
        channel: str | None = None,
        institution: str | None = None,
        counterparty: str | None = None,
        bank_account: str | None = None,
        fraud: str | None = None,
    ) -> str:
        """Emit one transaction; record it in the truth file if fraud and maybe label it."""
        r = self.rng
        c = acc.country
        if channel is None:
            u = r.random()
            channel = "wallet" if u < c.wallet_share else ("card" if u < 0.88 else r.choice(CHANNELS))
        self.txn_seq += 1
        txn_id = f"{self.clock.ymd(ms)}{self.txn_seq:010d}{r.randrange(10**6):06d}"
        payload: dict[str, Any] = {
            "transaction_id": txn_id,
            "amount": amount,
            "currency": c.currency,
            "channel": channel,
            "institution": institution or c.institutions[acc.idx % len(c.institutions)],
            "status": status,
            "counterparty": counterparty or self.merchant(ms),
        }
        if bank_account is None and channel == "bank_transfer":
            bank_account = acc.bank_account
        if bank_account:
            payload["bank_account"] = bank_account
        self.emit(ms, "transaction", env, dev, dumps(payload))
        if fraud:
            self.truth(
                {
                    "subject_type": "transaction",
                    "subject_id": txn_id,
                    "account_id": acc.account_id,
                    "fraud": True,
                    "scenario": fraud,
                    "event_time": self.clock.utc(ms),
                }
            )
            self.report_transaction(acc, txn_id, fraud, ms)
        elif r.random() < (0.05 if acc.tags.intersection(LOOKALIKE_TAGS) else 0.01):
            self.labels.add("transaction", txn_id, None, ms, acc.idx)
        if not acc.labelled:
            self.label_account(acc, ms, fraud if fraudster(acc, ms) else None)
        return txn_id

    def report_transaction(self, acc: Account, txn_id: str, fraud: str, ms: int) -> None:
        """Maybe report a fraudulent transaction. A victim disputes it (a transaction label); a fraudster's is
        reported less often, and the team that confirms it reports the fraudster's account too (once)."""
        by_holder = fraudster(acc, ms)
        if self.rng.random() >= REPORT_P["fraudster" if by_holder else "victim"]:
            return
        reported = self.labels.add("transaction", txn_id, fraud, ms, acc.idx)
        if by_holder and (acc.report_ms is None or reported < acc.report_ms):  # the earlier report prevails
            self.report_account(acc, ms, fraud, reported)

    def report_account(self, acc: Account, ms: int, fraud: str, reported_ms: int | None = None) -> None:
        """An account report: fraudulent throughout, or from ``fraud_since`` when the account was honest before
        (a takeover the owner never got back)."""
        acc.labelled = True
        since = acc.fraud_since_ms if acc.scenario == "account_takeover" else None
        acc.report_ms = self.labels.add("account", acc.account_id or "", fraud, ms, acc.idx, since, reported_ms)

    def label_account(self, acc: Account, ms: int, fraud: str | None) -> None:
        """Decide once per account whether the fraud team reports on it (look-alikes get reviewed more, and
        now and then wrongly reported). A takeover is decided when the attacker strikes."""
        if acc.account_id is None or (acc.scenario == "account_takeover" and not fraud):
            return
        acc.labelled = True
        if fraud:
            if self.rng.random() < 0.5:
                self.report_account(acc, ms, fraud)
            return
        lookalike = bool(acc.tags.intersection(LOOKALIKE_TAGS))
        u = self.rng.random()
        if u < (0.2 if lookalike else 0.03):
            wrong = lookalike and u < 0.002  # one in a hundred reviews of a look-alike gets it wrong
            self.labels.add("account", acc.account_id, "fake_account" if wrong else None, ms, acc.idx)


def fraudster(acc: Account, ms: int) -> bool:
    """Whether the account's holder at ``ms`` is a fraudster (a fake account, or a takeover never undone)."""
    if acc.scenario is None or acc.fraud_since_ms is None or ms < acc.fraud_since_ms:
        return False
    return acc.scenario != "account_takeover" or acc.fraud_until_ms is None
