"""Legal holds (2.9(4), 4.5(4)): suspend purging and erasure of one subject's data, for a reason, until a date.

A hold names its subject by the raw identifiers an investigator gives, stored as the account
pseudonyms only. Placing and releasing a hold are audited (the record names the hold's owner as
its actor, never the subject).
"""

from __future__ import annotations

import secrets
from datetime import datetime

from devicerisk.governance.stores import Stores
from devicerisk.governance.subjects import Identifiers, UnknownSubjectError, resolve
from devicerisk.store import audit, governance
from devicerisk.store.governance import Hold

MAX_REASON = 200


class HoldError(ValueError):
    """A hold that cannot be placed or released; nothing was changed."""


def place(
    stores: Stores,
    ids: Identifiers,
    *,
    reason: str,
    owner: str,
    expires_at: datetime,
    now: datetime,
    role: str = "legal",
) -> list[Hold]:
    """Place a hold on every account of the subject; returns the holds (one per account pseudonym)."""
    if not reason.strip() or len(reason) > MAX_REASON:
        raise HoldError(f"a hold needs a reason of 1 to {MAX_REASON} characters")
    if expires_at <= now:
        raise HoldError("a hold's expiry must be in the future")
    audit.check_name("owner", owner)
    subject = resolve(ids, stores.keyring, stores.lake_dir)
    if not subject.accounts:
        raise UnknownSubjectError("a hold is placed on an account: give its account id, or a phone number it uses")
    holds = [
        Hold(f"hold-{secrets.token_hex(6)}", pid, reason.strip(), owner, now, expires_at)
        for pid in sorted(subject.accounts)
    ]
    for hold in holds:
        governance.add_hold(stores.warehouse_path, hold)
    audit.append(
        stores.audit,
        actor=owner,
        role=role,
        action="hold.place",
        purpose="legal_hold",
        counts={"accounts": len(holds)},
        when=now,
    )
    return holds


def release(stores: Stores, hold_id: str, *, actor: str, now: datetime, role: str = "legal") -> Hold:
    """Release a hold; the next purge removes what it kept that has expired meanwhile."""
    hold = governance.release_hold(stores.warehouse_path, hold_id, now)
    if hold is None:
        raise HoldError(f"no active hold {hold_id!r}")
    audit.append(
        stores.audit,
        actor=actor,
        role=role,
        action="hold.release",
        purpose="legal_hold",
        counts={"accounts": 1},
        when=now,
    )
    return hold
