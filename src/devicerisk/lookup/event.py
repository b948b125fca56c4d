"""One raw telemetry event, in contract form, made into the lake row ingest would make of it: in memory only.

The same steps as ingest, by the same functions: the record is validated by ingest's parser (the contract's
columnar checks, then the per-record reasons), then minimised and pseudonymised by the privacy transform
with the current pseudonym key, field by field, for the fields the features read (``SCORED_FIELDS``): the
rest of the event is validated, then dropped unread (least sufficiency: scoring needs nothing else).
Nothing is written: no landing file, no quarantine record, no lake row.
A rejected event raises :class:`InvalidEvent` with the contract's reasons, which name fields and rules,
never values.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pyarrow as pa

from devicerisk.config import Settings
from devicerisk.contract.fields import FIELDS
from devicerisk.contract.model import Field
from devicerisk.contract.schema import lake_schema
from devicerisk.contract.times import TimeWindow
from devicerisk.ingest.parse import parse_batch
from devicerisk.ingest.read import split_records
from devicerisk.privacy.keys import load_pseudonym_key
from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.privacy.transform import treat_batch
from devicerisk.risk.features import EVENT_COLUMNS

#: The contract's fields whose lake columns the features read (``features.EVENT_COLUMNS``).
SCORED_FIELDS: tuple[Field, ...] = tuple(
    f for f in FIELDS if set(lake_schema((f,)).names) - set(lake_schema(()).names) & set(EVENT_COLUMNS)
)
#: The batch id the treated row carries (the lake's column is required; the row is never stored).
BATCH_ID = "score-now"


class InvalidEvent(ValueError):
    """An event the contract rejects; ``reasons`` are the contract's words (field and rule, never a value)."""

    def __init__(self, reasons: list[str]) -> None:
        self.reasons = tuple(reasons)
        super().__init__("; ".join(self.reasons))


@dataclass(frozen=True, slots=True)
class Treatment:
    """What validating and treating one event needs, resolved once from the settings."""

    pseudonymiser: Pseudonymiser
    minor_age: int = 18
    phone_region: str = "CN"
    future_skew: timedelta = timedelta(hours=24)
    max_record_bytes: int = 64 * 1024

    @classmethod
    def of(cls, settings: Settings) -> Treatment:
        """The treatment ingest applies under ``settings``: the current pseudonym key, the same options."""
        return cls(
            Pseudonymiser(load_pseudonym_key(settings), settings.default_phone_region),
            settings.minor_age,
            settings.default_phone_region,
            timedelta(hours=settings.max_future_skew_hours),
            settings.max_record_bytes,
        )

    def treat(self, raw: Any, now: datetime | None = None) -> pa.Table:
        """The one treated lake row of ``raw`` (a decoded JSON object), or :class:`InvalidEvent`."""
        if not isinstance(raw, dict):
            raise InvalidEvent(["the event is not a JSON object"])
        try:
            line = orjson.dumps(raw)
        except TypeError as err:  # a value JSON cannot hold (the message names a type, not a value)
            raise InvalidEvent([f"the event is not JSON: {err}"]) from None
        batch = split_records(BATCH_ID, BATCH_ID, line + b"\n", max_record=self.max_record_bytes)
        now = now or datetime.now(UTC)
        parsed = parse_batch(batch, window=TimeWindow.at(now, self.future_skew))
        if parsed.rejected or parsed.table.num_rows != 1:
            raise InvalidEvent([r.reason for r in parsed.rejected] or ["the event could not be read"])
        return treat_batch(
            parsed.table,
            self.pseudonymiser,
            BATCH_ID,
            minor_age=self.minor_age,
            phone_region=self.phone_region,
            ingested_at=now,
            fields=SCORED_FIELDS,
        ).table
