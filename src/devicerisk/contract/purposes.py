"""The registered purposes of processing (2.8): what each is, on what basis, and which event types serve it.

Every reader of personal data names one of these purposes, and the audit trail records it with every read
(``store.audit.body`` refuses a purpose that is not registered, so a read for an unregistered purpose fails
before it is recorded). The readers: the flows (their audit records), the lookup service (``X-Purpose``), the
analysts' interface (``open_lake(purpose=...)``) and the exports.

A new purpose is a contract change: a :class:`Purpose` added here, with its basis.

- ``original``: stated in the policy when the data was collected (risk control, account management).
- ``related``: a later purpose directly or reasonably related to an original one (``related_to``); it needs
  no new consent (2.8, first sentence).
- ``consent``: a later purpose not related to an original one; data flows to it only for accounts whose
  recorded consent (a consent event with this ``purpose``, ``granted`` last) covers it (2.8, second sentence).
- ``duty``: a legal duty the pipeline itself carries out (data-subject rights and the identity check before
  them, retention, legal holds, security, audit: 2.9(1), 5, 6); it reads whatever the duty concerns.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from devicerisk.contract.fields import EVENT_TYPES

_ALL_EVENT_TYPES = frozenset(e.name for e in EVENT_TYPES)


class Basis(StrEnum):
    ORIGINAL = "original"
    RELATED = "related"
    CONSENT = "consent"
    DUTY = "duty"


class UnregisteredPurposeError(ValueError):
    """A read or record for a purpose the contract does not register."""


@dataclass(frozen=True, slots=True)
class Purpose:
    """One registered purpose: its name, what it is for, the policy clause, its basis and the event types it reads."""

    name: str
    description: str
    clause: str
    basis: Basis
    event_types: frozenset[str] = _ALL_EVENT_TYPES
    related_to: str | None = None  # the original purpose a ``related`` one extends

    @property
    def needs_consent(self) -> bool:
        """Whether only accounts whose recorded consent covers this purpose may flow to it."""
        return self.basis is Basis.CONSENT


PURPOSES: tuple[Purpose, ...] = (
    # the risk features read every event type: logins and registrations (account events) too
    Purpose(
        "risk_control", "Judge account and transaction risk; stop fraud and security incidents", "2.6", Basis.ORIGINAL
    ),
    Purpose(
        "account_management",
        "Registration, login, consent, cancellation and age",
        "6.1, 6.3, 7",
        Basis.ORIGINAL,
        frozenset({"account"}),
    ),
    Purpose("data_subject_rights", "Access, correction, erasure and withdrawal requests", "6", Basis.DUTY),
    Purpose("identity_verification", "Checking who makes a data-subject request", "6.4.2", Basis.DUTY),
    Purpose("retention", "Purges at the end of each retention period", "5.1.2", Basis.DUTY),
    Purpose("legal_hold", "Keeping data a legal obligation requires", "2.9(4), 4.5(4)", Basis.DUTY),
    Purpose("security", "Keys, access control and incident response", "5.2, 5.3", Basis.DUTY),
    Purpose("audit", "Reading the audit trail", "5.2.1", Basis.DUTY),
    Purpose("oversight", "Overseeing the processors entrusted with data", "4.4", Basis.DUTY),
    Purpose("termination_of_operation", "Deleting or anonymising every store at the end", "5.1.3", Basis.DUTY),
)


def registered() -> dict[str, Purpose]:
    """The registered purposes by name (read at each call: a purpose added to ``PURPOSES`` counts at once)."""
    return {p.name: p for p in PURPOSES}


def require(name: str) -> Purpose:
    """The registered purpose ``name``, or :class:`UnregisteredPurposeError` naming the registered ones."""
    found = registered().get(name)
    if found is None:
        names = ", ".join(registered())
        raise UnregisteredPurposeError(
            f"purpose {name!r} is not registered in the contract (one of: {names}); a new purpose is a contract "
            "change in devicerisk/contract/purposes.py"
        )
    return found


def processing() -> tuple[str, ...]:
    """The purposes data is processed for (not the pipeline's own duties), sorted."""
    return tuple(sorted(p.name for p in PURPOSES if p.basis is not Basis.DUTY))


def problems(purposes: tuple[Purpose, ...] | None = None) -> list[str]:
    """What is wrong with a registry (empty when it is sound): unknown event types, an event type whose contract
    purpose is not an original one serving it, a related purpose without an original one to relate to."""
    purposes = PURPOSES if purposes is None else purposes
    by_name = {p.name: p for p in purposes}
    found = [
        f"{p.name}: unknown event types {sorted(p.event_types - _ALL_EVENT_TYPES)}"
        for p in purposes
        if p.event_types - _ALL_EVENT_TYPES
    ]
    for e in EVENT_TYPES:
        owner = by_name.get(e.purpose)
        if owner is None or owner.basis is not Basis.ORIGINAL or e.name not in owner.event_types:
            found.append(f"event type {e.name}: its purpose {e.purpose!r} is not an original purpose serving it")
    for p in purposes:
        if p.basis is Basis.RELATED and (
            p.related_to not in by_name or by_name[p.related_to].basis is not Basis.ORIGINAL
        ):
            found.append(f"{p.name}: a related purpose names the original purpose it relates to")
        if p.basis is not Basis.RELATED and p.related_to is not None:
            found.append(f"{p.name}: only a related purpose names related_to")
    return found
