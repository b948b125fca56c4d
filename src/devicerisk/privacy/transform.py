"""The privacy transform: apply the contract's treatments, field by field, to parsed records.

Input is the parser's flat table (dotted column names, raw values). Output is the lake's schema:
kept values, pseudonyms, minimised attributes and nothing else. A field that does not belong to an
event's type is nulled, so an upstream mistake cannot smuggle a value past its treatment.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Action, Field, Kind
from devicerisk.contract.schema import lake_schema
from devicerisk.ingest.validate import utc_times
from devicerisk.privacy.arrow_utils import null_where
from devicerisk.privacy.minimise import MINIMISERS, MinimiseContext
from devicerisk.privacy.pseudonymise import Pseudonymiser


def _applicable(field: Field, values: pa.Array, event_type: pa.Array) -> pa.Array:
    if field.event_types is None:
        return values
    return null_where(values, pc.invert(pc.is_in(event_type, pa.array(sorted(field.event_types)))))


def treat_field(
    field: Field, values: pa.Array, pseudonymiser: Pseudonymiser, ctx: MinimiseContext
) -> dict[str, pa.Array]:
    """The lake columns of one field."""
    out: dict[str, pa.Array] = {}
    for treatment in field.treatments:
        if treatment.action is Action.KEEP:
            out[field.column] = ctx.event_time if field.kind is Kind.TIMESTAMP else values
        elif treatment.action is Action.PSEUDONYMISE:
            assert treatment.name is not None
            out[f"{field.column}_pid"] = pseudonymiser.pseudonymise(treatment.name, values)
        elif treatment.action is Action.MINIMISE:
            assert treatment.name is not None
            for suffix, column in MINIMISERS[treatment.name](values, ctx).items():
                out[f"{field.column}_{suffix}"] = column
    return out


def treat(
    parsed: pa.Table,
    pseudonymiser: Pseudonymiser,
    batch_id: str,
    *,
    minor_age: int = 18,
    phone_region: str = "CN",
    ingested_at: datetime | None = None,
    fields: tuple[Field, ...] = FIELDS,
) -> pa.Table:
    """Treated lake rows for validated, parsed records."""
    schema = lake_schema(fields)
    n = parsed.num_rows
    times = utc_times(parsed.column("event_time").combine_chunks())
    ctx = MinimiseContext(event_time=times, minor_age=minor_age, phone_region=phone_region)
    event_type = parsed.column("event_type").combine_chunks()
    columns: dict[str, pa.Array] = {}
    for field in fields:
        values = _applicable(field, parsed.column(field.path).combine_chunks(), event_type)
        columns.update(treat_field(field, values, pseudonymiser, ctx))
    now = ingested_at or datetime.now(UTC)
    columns["event_date"] = times.cast(pa.date32())
    columns["batch_id"] = pa.array([batch_id] * n, pa.string())
    columns["key_id"] = pa.array([pseudonymiser.key_id] * n, pa.string())
    columns["ingested_at"] = pa.array([now] * n, pa.timestamp("us", tz="UTC"))
    arrays = [columns[f.name].cast(f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)
