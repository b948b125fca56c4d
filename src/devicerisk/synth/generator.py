"""The generation loop: slice by slice, replay scheduled actions, draw sessions, sort, write.

Memory holds the population (per account, not per event) and one time slice of events (an hour,
or less when there are many accounts); everything else streams to disk. Randomness comes only
from generators seeded by ``config.seed``.
"""

from __future__ import annotations

import heapq
import itertools
import random
from bisect import bisect_left
from collections.abc import Callable
from operator import itemgetter
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from devicerisk.synth.behaviour import Behaviour
from devicerisk.synth.clock import DAY_MS, HOUR_MS, Clock, to_ms
from devicerisk.synth.config import SynthConfig, SynthResult
from devicerisk.synth.emitter import Emitter, LabelSink
from devicerisk.synth.population import Account
from devicerisk.synth.scenarios import build
from devicerisk.synth.world import COUNTRIES, DIURNAL
from devicerisk.synth.writer import AtomicFile, BatchWriter, LabelWriter

_first = itemgetter(0)
#: Accounts per slice of an hour: 20,000 accounts are simulated in half-hour slices, and so on.
SLICE_ACCOUNTS = 10_000


def _truth_account(acc: Account, clock: Clock) -> dict[str, Any]:
    return {
        "subject_type": "account",
        "subject_id": acc.account_id,
        "fraud": acc.scenario is not None,
        "scenario": acc.scenario,
        "group": acc.group,
        "tags": sorted(acc.tags),
        "fraud_since": clock.utc(acc.fraud_since_ms) if acc.scenario and acc.fraud_since_ms is not None else None,
        # a takeover the owner undid: the account was in the attacker's hands until then
        "fraud_until": clock.utc(acc.fraud_until_ms) if acc.fraud_until_ms is not None else None,
        "victim_of": acc.victim_of,  # a payment scenario done to this honest account
        "registered_at": clock.utc(acc.created_ms) if acc.created_ms is not None else None,
        "country": acc.country.code,
    }


def _clear_previous(out: Path) -> None:
    """Remove an earlier run's output (only our own file names), so no stale batch outlives a re-run."""
    for pattern in (
        "telemetry/batch-*.ndjson*",
        "telemetry/.batch-*",
        "labels/labels-*.ndjson",
        "labels/.labels-*",
        "truth/scenarios.ndjson",
        "truth/.scenarios.ndjson.tmp",
    ):
        for path in out.glob(pattern):
            path.unlink()


def generate(out: Path, config: SynthConfig, progress: Callable[[int], None] | None = None) -> SynthResult:
    """Write synthetic telemetry batches, labels and the ground truth under ``out``.

    Files of an earlier run in ``out`` are replaced.
    ``progress`` is called with the number of events written so far after every time slice (an hour,
    or less for large populations).
    """
    config.validate()
    out = Path(out)
    _clear_previous(out)
    start_ms = to_ms(config.start)
    hours = config.days * 24
    # separate streams, so e.g. a change in labelling does not shift every later event
    pop_rng = random.Random(f"devicerisk.synth:{config.seed}:population")
    ev_rng = random.Random(f"devicerisk.synth:{config.seed}:events")
    label_rng = random.Random(f"devicerisk.synth:{config.seed}:labels")
    np_rng = np.random.default_rng([config.seed, 20261101])
    id_rng = np.random.default_rng([config.seed, 4])

    tz_names = sorted({tz for c in COUNTRIES.values() for tz in c.tzs})
    clock = Clock(start_ms, hours, tz_names)
    pop = build(config, pop_rng, clock, start_ms)
    accounts = pop.accounts

    rate = np.array([a.spd if a.active else 0.0 for a in accounts], dtype=np.float64)
    # local-hour shift of each account's primary device, for the diurnal curve
    shift = np.array([clock.offset_minutes(a.devices[0].tz, start_ms) // 60 for a in accounts], dtype=np.int64)
    diurnal = np.asarray(DIURNAL, dtype=np.float64)
    diurnal /= diurnal.sum()

    heap = list(pop.schedule)
    heapq.heapify(heap)
    seq = itertools.count(len(heap))

    (out / "truth").mkdir(parents=True, exist_ok=True)
    truth_file = AtomicFile(out / "truth" / "scenarios.ndjson")
    labels = LabelSink(label_rng, clock)
    label_writer = LabelWriter(out / "labels")
    batches = BatchWriter(out / "telemetry", config.events_per_batch, config.gzip)

    def truth(row: dict[str, Any]) -> None:
        truth_file.write(orjson.dumps(row) + b"\n")

    def activate(acc: Account) -> None:
        rate[acc.idx] = acc.spd if acc.active else 0.0

    def schedule(ms: int, kind: str, idx: int, arg: object) -> None:
        heapq.heappush(heap, (ms, next(seq), kind, idx, arg))

    em = Emitter(ev_rng, id_rng, clock, labels, truth, config.late_rate)
    em.hijacked = {m: (start, end) for m, start, end in pop.hijacked}
    behaviour = Behaviour(em, accounts, pop.farms, activate, schedule)
    pending: list[tuple[int, str]] = []
    # slices short enough that one holds ~10k events however many accounts there are
    per_hour = min(12, max(1, -(-config.accounts // SLICE_ACCOUNTS)))
    slice_ms = HOUR_MS // per_hour
    try:
        for i in range(hours * per_hour):
            s = start_ms + i * slice_ms
            e = s + slice_ms
            day = s // DAY_MS
            while heap and heap[0][0] < e:
                ms, _, kind, idx, arg = heapq.heappop(heap)
                behaviour.run(ms, kind, idx, arg)
            counts = np_rng.poisson(rate * diurnal[((s // HOUR_MS) + shift) % 24] / per_hour)
            for idx in np.flatnonzero(counts).tolist():
                acc = accounts[idx]
                for _ in range(int(counts[idx])):
                    behaviour.session(acc, s + int(ev_rng.random() * slice_ms), day)
            buf, em.buf = em.buf, []
            buf += pending
            buf.sort(key=_first)
            cut = bisect_left(buf, e, key=_first)
            batches.write(buf[:cut])
            pending = buf[cut:]
            if (e - start_ms) % DAY_MS == 0:
                label_writer.write(labels.release(e))
                for idx in labels.take_reported():  # the fraud team acts on the day's reports
                    behaviour.block(accounts[idx])
            if progress is not None:
                progress(batches.events)
        # sessions that ran past the end of the window, and late deliveries
        pending.sort(key=_first)
        batches.write(pending)
        batches.close()
        label_writer.write(labels.release(None))
        for acc in accounts[: pop.n_accounts]:
            truth(_truth_account(acc, clock))
        truth_path = truth_file.close()
    except BaseException:
        batches.abort()
        truth_file.abort()
        raise
    if progress is not None:
        progress(batches.events)
    return SynthResult(
        events=batches.events,
        batches=list(batches.batches),
        label_files=list(label_writer.files),
        truth_file=truth_path,
        accounts=config.accounts,
    )
