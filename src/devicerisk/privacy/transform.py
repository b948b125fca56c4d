"""The privacy transform: apply the contract's treatments, field by field, to parsed records.

Input is the parser's flat table (dotted column names, raw values). Output is the lake's schema:
kept values, pseudonyms, minimised attributes and nothing else. A field that does not belong to an
event's type is nulled, so an upstream mistake cannot smuggle a value past its treatment. Identifiers
typed into kept text are redacted (:mod:`devicerisk.privacy.redact`), on every field the contract says.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action, Field, Kind
from devicerisk.contract.schema import lake_schema
from devicerisk.contract.times import utc_times
from devicerisk.privacy.arrow_utils import null_where
from devicerisk.privacy.minimise import MINIMISERS, ROW_CONTEXT_MINIMISERS, MinimiseContext
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.redact import redact_column


def _applicable(
    field: Field, values: pa.Array, foreign: dict[frozenset[str], pa.Array], event_type: pa.Array
) -> pa.Array:
    """``values`` with nulls on events of types the field does not belong to."""
    if field.event_types is None:
        return values
    if field.event_types not in foreign:  # one mask per set of event types, shared by its fields
        foreign[field.event_types] = pc.invert(pc.is_in(event_type, pa.array(sorted(field.event_types))))
    mask = foreign[field.event_types]
    if values.null_count == len(values) or not pc.any(pc.and_(mask, pc.is_valid(values))).as_py():
        return values  # the usual case: nothing was sent where it does not belong
    return null_where(values, mask)


def _by_distinct(field: Field) -> bool:
    """Whether the field's treatments can run once per distinct value (they read no other column)."""
    return field.kind is Kind.STRING and not any(
        t.action is Action.MINIMISE and t.name in ROW_CONTEXT_MINIMISERS for t in field.treatments
    )


def _derived(field: Field, values: pa.Array, pseudonymiser: Pseudonymiser, ctx: MinimiseContext) -> dict[str, pa.Array]:
    out: dict[str, pa.Array] = {}
    for treatment in field.treatments:
        if treatment.action is Action.PSEUDONYMISE:
            assert treatment.name is not None
            out[f"{field.column}_pid"] = pseudonymiser.pseudonymise(treatment.name, values)
        elif treatment.action is Action.MINIMISE:
            assert treatment.name is not None
            for suffix, column in MINIMISERS[treatment.name](values, ctx).items():
                out[f"{field.column}_{suffix}"] = column
    return out


def treat_field(
    field: Field, values: pa.Array, pseudonymiser: Pseudonymiser, ctx: MinimiseContext
) -> dict[str, pa.Array]:
    """The lake columns of one field.

    Identifiers repeat: one device sends many events. Pseudonyms and minimised attributes of a
    string field are therefore computed once per distinct value and broadcast back.
    """
    out: dict[str, pa.Array] = {}
    if Action.KEEP in field.actions:
        out[field.column] = ctx.event_time if field.kind is Kind.TIMESTAMP else values
    if not field.actions & {Action.PSEUDONYMISE, Action.MINIMISE}:
        return out
    if _by_distinct(field):
        encoded = pc.dictionary_encode(values)
        derived = _derived(field, encoded.dictionary, pseudonymiser, ctx)
        out.update({name: column.take(encoded.indices) for name, column in derived.items()})
    else:
        out.update(_derived(field, values, pseudonymiser, ctx))
    return out


@dataclass(frozen=True, slots=True)
class Treated:
    """Treated lake rows, and how many identifiers of each kind were redacted from their kept text."""

    table: pa.Table
    redactions: Counter[str]


def treat_batch(
    parsed: pa.Table,
    pseudonymiser: Pseudonymiser,
    batch_id: str,
    *,
    minor_age: int = 18,
    phone_region: str = "CN",
    ingested_at: datetime | None = None,
    fields: tuple[Field, ...] = FIELDS,
) -> Treated:
    """Treated lake rows for validated, parsed records, with the count of redacted identifiers."""
    schema = lake_schema(fields)
    n = parsed.num_rows
    times = utc_times(parsed.column("event_time").combine_chunks())
    ctx = MinimiseContext(event_time=times, minor_age=minor_age, phone_region=phone_region)
    event_type = parsed.column("event_type").combine_chunks()
    columns: dict[str, pa.Array] = {}
    foreign: dict[frozenset[str], pa.Array] = {}
    redactions: Counter[str] = Counter()
    for field in fields:
        values = _applicable(field, parsed.column(field.path).combine_chunks(), foreign, event_type)
        treated = treat_field(field, values, pseudonymiser, ctx)
        if field.redacted:  # the minimisers above read the value as sent; only the kept text is redacted
            treated[field.column], found = redact_column(treated[field.column], phone_region)
            redactions.update(found)
        columns.update(treated)
    now = ingested_at or datetime.now(UTC)
    columns["event_date"] = times.cast(pa.date32())
    columns["batch_id"] = pa.repeat(pa.scalar(batch_id, pa.string()), n)
    columns["key_id"] = pa.repeat(pa.scalar(pseudonymiser.key_id, pa.string()), n)
    columns["ingested_at"] = pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), n)
    arrays = [c if (c := columns[f.name]).type == f.type else c.cast(f.type) for f in schema]
    return Treated(pa.Table.from_arrays(arrays, schema=schema), redactions)


def treat(parsed: pa.Table, pseudonymiser: Pseudonymiser, batch_id: str, **options: Any) -> pa.Table:
    """Treated lake rows for validated, parsed records (see :func:`treat_batch` for the options)."""
    return treat_batch(parsed, pseudonymiser, batch_id, **options).table
