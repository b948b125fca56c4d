"""Key rotation (5.2.2): what changes when a pseudonym or quarantine key is replaced.

- **Quarantine key** (AES-256-GCM): every sealed file names its key id, so files sealed before a
  rotation stay readable while the retired key is in the keyring, and :func:`rekey_quarantine`
  re-seals them under the current key; the retired key can then be destroyed.
- **Pseudonym key** (HMAC): a pseudonym cannot be recomputed under a new key without the raw value,
  and raw values live only in landing for a few days, so a re-keying migration of the lake is not
  possible by design. Instead the retired key stays in the keyring (``previous_pseudonym_key_files``)
  until the data pseudonymised under it has aged out (every lake row carries its ``key_id``), and
  subject lookups (access, erasure, holds) pseudonymise under every key, so they find the subject's
  rows from before and after the rotation.
"""

from __future__ import annotations

from devicerisk.governance.stores import Stores
from devicerisk.store import audit, quarantine


class KeyRingError(LookupError):
    """Data sealed with a key that is not in the keyring."""


def rekey_quarantine(stores: Stores, actor: str = "key-rotation") -> int:
    """Re-seal every quarantined batch sealed under a retired key with the current key; returns how many."""
    moved = 0
    for batch in quarantine.batches(stores.quarantine_dir):
        key_id = quarantine.key_id(stores.quarantine_dir, batch)
        if key_id == stores.quarantine_key.key_id:
            continue
        old = stores.quarantine_keys.get(key_id)
        if old is None:
            raise KeyRingError(f"quarantine batch {batch} is sealed with key {key_id}, which is not in the keyring")
        quarantine.write(
            stores.quarantine_dir, batch, quarantine.read(stores.quarantine_dir, batch, old), stores.quarantine_key
        )
        moved += 1
    audit.append(
        stores.audit,
        actor=actor,
        role="security",
        action="keys.rekey_quarantine",
        purpose="security",
        counts={"batches": moved},
    )
    return moved
