"""Entrusted processing (4.4): minimised, re-keyed extracts for outside processors, their register, and their end.

**Which fields a purpose needs** is read from the contract by one rule, so it cannot drift from it:

- the event types that serve a purpose are those the contract's register of purposes gives it
  (``contract/purposes.py``); a processor is given a purpose of processing, never one of the pipeline's duties,
  and for a purpose that needs consent (2.8) only the events of accounts whose recorded consent covers it;
- an extract holds only events of those types, and of each event only the fields those types carry: the envelope
  (fields on every event) and the payload fields declared for at least one of the types, as the lake holds them
  (kept, minimised or pseudonymised; a dropped field has no column);
- of the columns the pipeline adds it keeps ``event_date``: batch ids, key ids and ingest times serve the pipeline.

A purpose the register does not hold is refused.

**Linking columns are re-keyed**: every pseudonym column, and the record key (``event_id``, which would otherwise
join each row to the lake), are mapped by HMAC-SHA256 under a key derived for this entrustment from the pseudonym
key, the processor's name and a random salt kept in the register. Equal values stay equal within an extract (its
subjects and joins are intact), but two extracts, or an extract and the lake, share no value. Values the purpose
needs are kept as the lake holds them (times, amounts): the lake itself is never handed out.

Every export, end, expiry and listing is audited: who, what, the processor's name, counts; never a value.

A data subject's rows in the extracts (erasure, incident reports) are found by
:mod:`devicerisk.governance.entrusted_data`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from devicerisk.contract import purposes as registered_purposes
from devicerisk.contract.fields import CONTRACT_VERSION, EVENT_TYPES, FIELDS
from devicerisk.contract.model import Action
from devicerisk.contract.schema import output_columns
from devicerisk.governance.incident import Window, parse_time
from devicerisk.governance.stores import Stores
from devicerisk.privacy.consent import covered_accounts
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import rekey
from devicerisk.store import audit, lake, processors, warehouse
from devicerisk.store.processors import ACTIVE, ENDED, Deletion, Entrustment, ExtractFile

CLAUSE = "4.4"
ROLE = "privacy_officer"
EVENTS_FILE = "events.parquet"
KEY_PURPOSE = "entrust"  # the derivation label of processors' keys
_PIPELINE_KEPT = ("event_date",)


class EntrustError(ValueError):
    """An export or end that cannot run as asked (an unknown purpose, a past expiry, a processor already served)."""


@dataclass(frozen=True, slots=True)
class Scope:
    """What a purpose may be given: its event types, their fields and lake columns, and which columns link."""

    purpose: str
    event_types: tuple[str, ...]
    fields: tuple[str, ...]
    columns: tuple[str, ...]
    rekeyed: tuple[str, ...]


def purposes() -> tuple[str, ...]:
    """The purposes an extract may serve: the register's purposes of processing."""
    return registered_purposes.processing()


def scope(purpose: str) -> Scope:
    """The fields and columns ``purpose`` needs, by the rule in the module's docstring."""
    if purpose not in purposes():
        raise EntrustError(f"unknown purpose {purpose!r}; the registered purposes are: {', '.join(purposes())}")
    types = registered_purposes.require(purpose).event_types
    paths: list[str] = []
    columns: list[str] = []
    rekeyed: list[str] = []
    for f in FIELDS:
        if f.event_types is not None and not f.event_types & types:
            continue
        for t in f.treatments:
            names = [c.name for c in output_columns(dataclasses.replace(f, treatments=(t,)))]
            columns += names
            if t.action is Action.PSEUDONYMISE or f.record_key:
                rekeyed += names
        if f.actions != {Action.DROP}:
            paths.append(f.path)
    ordered = tuple(e.name for e in EVENT_TYPES if e.name in types)
    return Scope(purpose, ordered, tuple(paths), (*columns, *_PIPELINE_KEPT), tuple(rekeyed))


def window(start: str | None, end: str | None) -> Window:
    """The export window from ``--from`` (inclusive) and ``--to`` (exclusive), ISO dates or times, UTC unless given;
    either may be open."""
    first, last = (None if t is None else parse_time(t) for t in (start, end))
    if first is not None and last is not None and last <= first:
        raise EntrustError("the export window is empty or inverted: --to must be later than --from")
    return Window(first, last)


def _in_scope(stores: Stores, wanted: Scope, window: Window, schema: pa.Schema) -> ds.Expression:
    """Events of the purpose's types in ``window`` (by event time, and by event date so partitions are pruned),
    and for a purpose that needs consent, of the accounts whose recorded consent covers it (2.8)."""
    expr = ds.field("event_type").isin(pa.array(wanted.event_types, pa.string()))
    if registered_purposes.require(wanted.purpose).needs_consent:
        decisions = warehouse.consent_state(stores.warehouse_path)["consent_decisions"]
        expr &= ds.field("account_id_pid").isin(covered_accounts(decisions, wanted.purpose))
    return expr & window.expression(schema, "event_date") & window.expression(schema, "event_time")


def _output_schema(schema: pa.Schema, columns: list[str], rekeyed: set[str]) -> pa.Schema:
    """The extract's schema: the lake's columns, re-keyed ones as plain strings (views and large strings too)."""
    out = []
    for name in columns:
        kind = schema.field(name).type
        if name in rekeyed or pa.types.is_string_view(kind) or pa.types.is_large_string(kind):
            kind = pa.string()
        out.append(pa.field(name, kind))
    return pa.schema(out)


def _extract_batches(
    batches: Iterator[pa.RecordBatch], out: pa.Schema, rekeyed: set[str], key: Key, key_ids: set[str]
) -> Iterator[pa.RecordBatch]:
    """The lake's batches as the extract holds them; collects the lake key ids the rows were pseudonymised under."""
    for batch in batches:
        key_ids.update(k for k in pc.unique(batch.column("key_id")).to_pylist() if k is not None)
        arrays = []
        for f in out:
            column = batch.column(f.name)
            arrays.append(rekey(key, column) if f.name in rekeyed else column.cast(f.type))
        yield pa.RecordBatch.from_arrays(arrays, schema=out)


def manifest(entry: Entrustment, files: list[ExtractFile]) -> dict[str, Any]:
    """What the processor receives beside the data: scope, expiry, the key domain's id (never a key), file hashes."""
    return {
        "clause": CLAUSE,
        "extract_id": entry.extract_id,
        "processor": entry.processor,
        "purpose": entry.purpose,
        "event_types": list(entry.event_types),
        "fields": list(entry.fields),
        "columns": list(entry.columns),
        "rekeyed_columns": list(entry.rekeyed),
        "window": {"from": entry.window_from, "to": entry.window_to},
        "created_at": entry.created_at,
        "until": entry.until,
        "rows": entry.rows,
        "key_domain": entry.key_domain,
        "contract_version": CONTRACT_VERSION,
        "files": [dataclasses.asdict(f) for f in files],
        "terms": (
            f"For {entry.purpose} only. Pseudonyms and event ids are keyed for this processor alone. "
            f"Delete every copy by the end of {entry.until.isoformat()} and confirm the deletion."
        ),
    }


def export(
    stores: Stores, *, processor: str, purpose: str, until: date, window: Window, actor: str, now: datetime
) -> Entrustment:
    """Write a minimised, re-keyed extract of the lake's events for ``processor`` and register it."""
    processors.check_processor(processor)
    audit.check_name("actor", actor)  # refused before the work, not after it
    wanted = scope(purpose)
    if until < now.date():
        raise EntrustError(f"--until {until.isoformat()} is in the past: an extract expires today or later")
    pinned = lake.pinned(stores.lake_dir, lake.EVENTS)
    if pinned is None:
        raise EntrustError("the lake holds no events yet: there is nothing to entrust")
    data = pinned[1]
    columns = [c for c in wanted.columns if c in data.schema.names]  # a column the contract added later may lack
    rekeyed = {c for c in wanted.rekeyed if c in columns}
    out = _output_schema(data.schema, columns, rekeyed)
    salt = processors.new_salt()
    key = stores.keyring[0].derive(KEY_PURPOSE, processor, bytes.fromhex(salt))
    extract_id = processors.new_extract_id(now)
    folder = processors.extract_folder(stores.data_dir, extract_id)
    key_ids: set[str] = set()
    with processors.updating(stores.data_dir) as register:
        if held := [e for e in register if e.processor == processor and e.status == ACTIVE]:
            raise EntrustError(
                f"{processor} already holds an active extract (until {held[-1].until.isoformat()}): "
                "end it first (devicerisk entrust end)"
            )
        scan = data.to_batches(columns=[*columns, "key_id"], filter=_in_scope(stores, wanted, window, data.schema))
        try:
            written = processors.write_table(
                folder, EVENTS_FILE, out, _extract_batches(scan, out, rekeyed, key, key_ids)
            )
            entry = Entrustment(
                extract_id=extract_id,
                processor=processor,
                purpose=purpose,
                event_types=wanted.event_types,
                fields=wanted.fields,
                columns=tuple(columns),
                rekeyed=tuple(c for c in columns if c in rekeyed),
                window_from=window.start,
                window_to=window.end,
                created_at=now,
                created_by=actor,
                until=until,
                location=str(folder.relative_to(stores.data_dir)),
                rows=written.rows,
                key_domain=key.key_id,
                lake_key_ids=tuple(sorted(key_ids)),
                salt=salt,
            )
            processors.write_manifest(folder, manifest(entry, [written]))
        except BaseException:
            processors.remove_extract(folder)  # no half extract is left behind
            raise
        register.append(entry)
    counts = {"rows": entry.rows, "columns": len(entry.columns), "rekeyed_columns": len(entry.rekeyed), "files": 1}
    _audit(stores, actor, ROLE, "entrust.export", purpose, counts, processor)
    return entry


def end(stores: Stores, *, processor: str, actor: str, confirmed_by: str | None, now: datetime) -> Entrustment:
    """Revoke ``processor``'s extract (delete the local files, mark it ended) and record who at the processor
    confirmed its deletion; on an entrustment already ended, record that confirmation."""
    processors.check_processor(processor)
    audit.check_name("actor", actor)
    if confirmed_by is not None:
        audit.check_name("confirmed_by", confirmed_by)
    removed = 0
    with processors.updating(stores.data_dir) as register:
        index = next((i for i in reversed(range(len(register))) if register[i].processor == processor), None)
        if index is None:
            raise EntrustError(f"the register has no entrustment to {processor!r}")
        entry = register[index]
        if entry.status == ACTIVE:
            removed = processors.remove_extract(processors.extract_folder(stores.data_dir, entry.extract_id))
            confirmed_at = None if confirmed_by is None else now
            deletion = Deletion(now, actor, "revoked", removed, confirmed_by, confirmed_at)
            entry = dataclasses.replace(entry, status=ENDED, deletion=deletion)
        else:
            done = entry.deletion
            assert done is not None
            if done.confirmed_by is not None:
                raise EntrustError(
                    f"the entrustment to {processor} ended on {done.at:%Y-%m-%d}, its deletion confirmed by "
                    f"{done.confirmed_by}: nothing to do"
                )
            if confirmed_by is None:
                raise EntrustError(
                    f"the entrustment to {processor} ended on {done.at:%Y-%m-%d}; to record the processor's "
                    "deletion, give --confirmed-by"
                )
            deletion = dataclasses.replace(done, confirmed_by=confirmed_by, confirmed_at=now)
            entry = dataclasses.replace(entry, deletion=deletion)
        register[index] = entry
    counts = {"rows": entry.rows, "files_removed": removed, "confirmed": int(confirmed_by is not None)}
    _audit(stores, actor, ROLE, "entrust.end", entry.purpose, counts, processor)
    return entry


def revoke_expired(stores: Stores, now: datetime, actor: str = "retention-flow") -> list[Entrustment]:
    """Revoke every active extract past its last day (the daily purge): local files deleted, entry ended. The
    processor's confirmation is still to be recorded (``entrust end --confirmed-by``)."""
    if not processors.register(stores.data_dir):
        return []
    ended: list[Entrustment] = []
    with processors.updating(stores.data_dir) as register:
        for i, entry in enumerate(register):
            if entry.status == ACTIVE and entry.expired(now.date()):
                removed = processors.remove_extract(processors.extract_folder(stores.data_dir, entry.extract_id))
                deletion = Deletion(now, actor, "expired", removed)
                register[i] = dataclasses.replace(entry, status=ENDED, deletion=deletion)
                ended.append(register[i])
    for entry in ended:
        assert entry.deletion is not None
        counts = {"rows": entry.rows, "files_removed": entry.deletion.files_removed, "confirmed": 0}
        _audit(stores, actor, "pipeline", "entrust.expire", entry.purpose, counts, entry.processor)
    return ended


def overdue(stores: Stores, now: datetime) -> list[tuple[Entrustment, str]]:
    """Entrustments that keep data past their end, and how: an active extract past its last day, an ended one
    whose files are still here, or an ended one whose deletion the processor has not confirmed."""
    out: list[tuple[Entrustment, str]] = []
    for entry in processors.register(stores.data_dir):
        files = processors.extract_files(processors.extract_folder(stores.data_dir, entry.extract_id))
        if entry.status == ACTIVE:
            if entry.expired(now.date()):
                out.append((entry, f"active extract past its last day, {entry.until.isoformat()}"))
        elif files:
            out.append((entry, f"ended but {len(files)} files of its extract are still here"))
        elif entry.deletion is not None and entry.deletion.confirmed_by is None:
            out.append((entry, f"ended {entry.deletion.at:%Y-%m-%d}; the processor's deletion is not confirmed"))
    return out


def listing(stores: Stores, actor: str) -> list[Entrustment]:
    """The register, oldest first; audited (how many entries, how many active)."""
    audit.check_name("actor", actor)
    entries = processors.register(stores.data_dir)
    counts = {"entrustments": len(entries), "active": sum(e.status == ACTIVE for e in entries)}
    _audit(stores, actor, ROLE, "entrust.list", "oversight", counts, None)
    return entries


def _audit(
    stores: Stores, actor: str, role: str, action: str, purpose: str, counts: dict[str, int], processor: str | None
) -> None:
    audit.append(stores.audit, actor=actor, role=role, action=action, purpose=purpose, counts=counts, target=processor)
