"""A data subject's rows in the extracts entrusted to processors (4.4): count them, erase them, and say what an
exposed extract file held.

An extract's pseudonyms are re-keyed for its processor (``governance.entrust``): the subject's pseudonyms, under
every key of the keyring, re-keyed with the extract's own key (derived again from the register's salt) find the
subject's rows in it as their pseudonyms find them in the lake.

- **Erasure** (6.2.2): the rows are removed from every extract kept here (an ended one whose files remain too);
  the manifest lists the rewritten file and the register entry records the erasure, so the request can be
  forwarded to a processor that already holds a copy.
- **Incident** (5.3.3): an exposed extract's subjects are named by their lake pseudonyms, found by re-keying the
  lake's with the extract's key.
"""

from __future__ import annotations

import dataclasses
import logging
from datetime import datetime
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.contract.fields import DEVICE_KEY_COLUMNS
from devicerisk.governance.entrust import EVENTS_FILE, KEY_PURPOSE, manifest
from devicerisk.governance.incident import Exposure, IncidentError, scan_treated
from devicerisk.governance.stores import Stores
from devicerisk.privacy.keys import Key
from devicerisk.privacy.pseudonymise import rekey
from devicerisk.store import lake, processors
from devicerisk.store.processors import Entrustment, Erasure
from devicerisk.store.rows import ACCOUNT_COLUMN, SubjectRows

log = logging.getLogger(__name__)


def _processor_key(stores: Stores, entry: Entrustment) -> Key | None:
    """The key ``entry``'s extract was re-keyed with, derived again from the pseudonym key it was made under (None:
    that key is no longer in the keyring)."""
    for pseudonymiser in stores.keyring:
        key = pseudonymiser.derive(KEY_PURPOSE, entry.processor, bytes.fromhex(entry.salt))
        if key.key_id == entry.key_domain:
            return key
    return None


def _subject_in(stores: Stores, entry: Entrustment, subject: SubjectRows) -> SubjectRows | None:
    """The subject as ``entry``'s extract holds it: every pseudonym re-keyed in the processor's domain (None: the
    extract's key cannot be derived any more, so its rows cannot be told apart)."""
    key = _processor_key(stores, entry)
    if key is None:
        log.warning("the key of extract %s is gone: a subject's rows in it cannot be found", entry.extract_id)
        return None

    def mapped(values: frozenset[str]) -> frozenset[str]:
        return frozenset(rekey(key, pa.array(sorted(values), pa.string())).to_pylist())

    return SubjectRows(mapped(subject.accounts), {c: mapped(v) for c, v in subject.identifiers.items()})


def _held(stores: Stores) -> list[tuple[int, Entrustment, Path]]:
    """The entries of the register whose extract file is here, active or not (an ended one whose files are still
    here holds data all the same): (position, entry, folder)."""
    out = []
    for i, entry in enumerate(processors.register(stores.data_dir)):
        folder = processors.extract_folder(stores.data_dir, entry.extract_id)
        if (folder / EVENTS_FILE).exists():
            out.append((i, entry, folder))
    return out


def unmatchable(stores: Stores) -> list[Entrustment]:
    """The extracts kept here whose key can no longer be derived: a subject's rows in them cannot be found."""
    return [entry for _, entry, _ in _held(stores) if _processor_key(stores, entry) is None]


def subject_rows(stores: Stores, subject: SubjectRows) -> int:
    """How many of the subject's events the extracts kept here hold."""
    n = 0
    for _, entry, folder in _held(stores):
        if (mine := _subject_in(stores, entry, subject)) is not None:
            n += processors.matching_rows(folder, EVENTS_FILE, mine.mask)
    return n


def erase_subject(stores: Stores, subject: SubjectRows, request_id: str, now: datetime) -> int:
    """Remove the subject's events from every extract kept here, and record the erasure in each entry it changed
    (its manifest lists the rewritten file); returns how many rows went.

    The register records the erasure before the file changes (the new version is staged beside it first), so a
    run cut off anywhere is finished by running it again, and its rows are never counted under another request.
    """
    if not _held(stores):
        return 0  # nothing entrusted is kept here: the register is not touched
    removed, changed = 0, []
    with processors.updating(stores.data_dir) as register:
        for i, entry, folder in _held(stores):
            finished = processors.settle_staged(folder, EVENTS_FILE, entry.rows)  # a cut-off run's, any request's
            mine = _subject_in(stores, entry, subject)
            staged = None if mine is None else processors.stage_without(folder, EVENTS_FILE, mine.mask)
            recorded = any(e.request_id == request_id for e in entry.erasures)  # by a run cut off after it
            if staged is not None:
                gone = entry.rows - staged.rows
                erasures = entry.erasures if recorded else (*entry.erasures, Erasure(now, request_id, gone))
                entry = register[i] = dataclasses.replace(entry, rows=staged.rows, erasures=erasures)
                removed += gone
            if staged is not None or recorded or finished:
                changed.append((entry, folder, staged))
        processors.save(stores.data_dir, register)  # on record first
        for entry, folder, staged in changed:
            processors.replace_staged(folder, EVENTS_FILE)
            file = staged or processors.described(folder, EVENTS_FILE)  # the staged version is the file now
            processors.write_manifest(folder, manifest(entry, [file]))
    return removed


def holders(stores: Stores, request_id: str) -> list[str]:
    """The processors whose extracts an erasure ``request_id`` changed: they may hold a copy made before it."""
    changed = (e for e in processors.register(stores.data_dir) if any(x.request_id == request_id for x in e.erasures))
    return sorted({e.processor for e in changed})


def exposure(stores: Stores, path: Path) -> Exposure:
    """What an exposed file of the entrust folder held (5.3.3): every row of an extract, its subjects named by the
    lake's pseudonyms (re-keying the lake's with the extract's key finds them), or a register or manifest, which
    hold no personal data."""
    parts = path.relative_to(stores.data_dir.resolve()).parts
    part = "/".join(parts)
    if path.name in (processors.REGISTER, processors.MANIFEST):
        exp = Exposure("entrust", part, "the whole file")
        exp.notes.append(
            "no personal data: scope, expiry, row counts, file hashes, key ids and salts (a salt and the "
            "pseudonym key together re-derive a processor's key)"
        )
        return exp
    entry = next((e for e in processors.register(stores.data_dir) if e.extract_id in parts), None)
    if entry is None or path.name != EVENTS_FILE:
        raise IncidentError(f"{part} is not a file of an extract in the register")
    exp = Exposure("entrust", part, "every row of the file")
    scan_treated(exp, processors.read_batches(path.parent, path.name))
    exp.key_ids |= set(entry.lake_key_ids)  # a re-keyed pseudonym is linked to nothing without them as well
    key = _processor_key(stores, entry)
    subject_columns = [c for c in (ACCOUNT_COLUMN, *DEVICE_KEY_COLUMNS) if c in entry.rekeyed]  # what names them
    known = _lake_pseudonyms(stores, key, subject_columns) if key is not None else {}
    mapped = {known[v] for v in exp.accounts if v in known}
    devices = {known[v] for v in exp.devices if v in known}
    gone = len(exp.accounts) - len(mapped) + len(exp.devices) - len(devices)
    exp.accounts, exp.devices = mapped, devices
    exp.notes.append(
        f"pseudonyms re-keyed for {entry.processor} (key domain {entry.key_domain}): linking one to an "
        "identifier needs that key and the pseudonym key; subjects are named by their lake pseudonyms"
    )
    if key is None:
        exp.notes.append(
            f"the extract's key can no longer be derived (the pseudonym key it was made under is gone): its {gone} "
            "subjects are counted in its rows, and cannot be named"
        )
    elif gone:
        exp.notes.append(
            f"{gone} subjects of the extract are no longer in the lake (erased or expired since): "
            "counted in its rows, not named"
        )
    return exp


def _lake_pseudonyms(stores: Stores, key: Key, columns: list[str]) -> dict[str, str]:
    """The lake's pseudonyms in ``columns`` by their re-keyed value under ``key``."""
    data = lake.dataset(stores.lake_dir, lake.EVENTS)
    if data is None:
        return {}
    out: dict[str, str] = {}
    for name in (c for c in columns if c in data.schema.names):
        values = pc.unique(data.to_table(columns=[name]).column(name).combine_chunks().drop_null()).cast(pa.string())
        out |= dict(zip(rekey(key, values).to_pylist(), values.to_pylist(), strict=True))
    return out
