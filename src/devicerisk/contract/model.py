"""The vocabulary of the data contract: kinds, sensitivities, treatments, fields and event types.

The declaration itself lives in :mod:`devicerisk.contract.fields`; this module only defines the
building blocks so that the declaration reads as one line per field.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    """The JSON type a field must have on input."""

    STRING = "string"
    INT = "integer"
    FLOAT = "number"
    BOOL = "boolean"
    TIMESTAMP = "timestamp"  # RFC 3339 string with an explicit UTC offset
    STRING_LIST = "string[]"


class Sensitivity(StrEnum):
    """Clause 1.1/1.2 of the policy: personal sensitive, personal, or not personal."""

    SENSITIVE = "personal_sensitive"
    PERSONAL = "personal"
    NONE = "none"


class Action(StrEnum):
    """What the privacy transform does with a field."""

    KEEP = "keep"
    MINIMISE = "minimise"
    PSEUDONYMISE = "pseudonymise"
    DROP = "drop"


@dataclass(frozen=True, slots=True)
class Treatment:
    """One treatment; ``name`` is the minimiser function or the pseudonym domain.

    A pseudonym whose domain depends on another field of the record (a label's subject) has no ``name``:
    ``by`` names that field and ``domains`` maps each of its values to the domain.
    """

    action: Action
    name: str | None = None
    by: str | None = None
    domains: tuple[tuple[str, str], ...] = ()

    def __str__(self) -> str:
        if self.by is not None:
            return " or ".join(f"{self.action.value}:{d} ({self.by} {v})" for v, d in self.domains)
        return f"{self.action.value}:{self.name}" if self.name else self.action.value


KEEP = Treatment(Action.KEEP)
DROP = Treatment(Action.DROP)


def minimise(function: str) -> Treatment:
    """Keep only what the named minimiser derives from the value."""
    return Treatment(Action.MINIMISE, function)


def pseudonymise(domain: str) -> Treatment:
    """Replace the value by its keyed pseudonym in ``domain``."""
    return Treatment(Action.PSEUDONYMISE, domain)


def pseudonymise_by(field: str, domains: dict[str, str]) -> Treatment:
    """Replace the value by its keyed pseudonym in the domain that the record's ``field`` selects."""
    return Treatment(Action.PSEUDONYMISE, by=field, domains=tuple(domains.items()))


@dataclass(frozen=True, slots=True)
class Field:
    """One input field, declared once; everything else is derived from it."""

    path: str
    kind: Kind
    category: str
    sensitivity: Sensitivity
    treatments: tuple[Treatment, ...]
    retention: str
    event_types: frozenset[str] | None = None  # None: envelope field, present on every type
    required: bool = False
    description: str = ""
    enum: tuple[str, ...] | None = None
    max_length: int | None = None
    record_key: bool = False  # the record's own id, made by the sender's software: kept exactly as sent

    @property
    def column(self) -> str:
        """The base name of the field's lake columns (``payload.`` stripped, dots to underscores)."""
        return self.path.removeprefix("payload.").replace(".", "_")

    @property
    def actions(self) -> frozenset[Action]:
        return frozenset(t.action for t in self.treatments)

    @property
    def redacted(self) -> bool:
        """Whether identifiers typed into the field's kept text are redacted before the lake: every kept string,
        except an enum (only its declared values pass validation) and a record key (duplicates are found by it)."""
        return self.kind is Kind.STRING and Action.KEEP in self.actions and self.enum is None and not self.record_key

    def applies_to(self, event_type: str) -> bool:
        return self.event_types is None or event_type in self.event_types


@dataclass(frozen=True, slots=True)
class EventType:
    """One kind of telemetry event and the policy clause and purpose it serves."""

    name: str
    description: str
    clause: str
    purpose: str
    retention: str


@dataclass(frozen=True, slots=True)
class RetentionClass:
    """A retention class; the period is configuration (issue: retention), this is the default."""

    name: str
    default_days: int | None  # None: as long as the law requires; purged only on request
    description: str
