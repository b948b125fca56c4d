"""The analysts' read-only interface to the stores: :func:`open_lake`.

It gives DuckDB relations (``.df()`` for pandas, ``.to_arrow_table()`` for Arrow) over one consistent
snapshot: each lake table at the Delta version current when it was opened, and a copy of the warehouse
tables it shows (the batch ledger and the anonymous aggregates), taken from a copy of the warehouse's files
without opening it. No lock is held, so ingest, scoring and purges run while a notebook is open.

What it shows is what the lake holds for the purpose it is opened for (2.8): pseudonyms and minimised
attributes. It holds no pseudonym key and loads none (only the audit key, to record the opening and its
purpose), so it can pseudonymise nothing and re-identify nobody: lookups take pseudonyms only (a raw IMEI, phone or
account id is refused with :class:`RawIdentifierError`), and queries run on a private DuckDB connection
that reads no file (``enable_external_access`` off and locked), so the landing zone's raw batches and the
warehouse's other tables stay out of reach.

The snapshot stays readable while the lake files it names exist: a vacuum removes files replaced by a newer
version after ``DEVICERISK_VACUUM_GRACE_HOURS`` (1 hour by default). Open a new one to see newer data.
"""

from __future__ import annotations

import getpass
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds

from devicerisk.analytics import views
from devicerisk.config import Settings
from devicerisk.contract import purposes
from devicerisk.contract.schema import label_schema, lake_schema
from devicerisk.governance.stores import audit_trail
from devicerisk.privacy.consent import covered_accounts
from devicerisk.privacy.masking import is_pseudonym, mask_columns
from devicerisk.privacy.redact import redact_text
from devicerisk.store import audit, lake, scores, warehouse

#: The lake tables of the snapshot, pinned at one version each.
LAKE_TABLES = (lake.EVENTS, lake.LABELS, scores.TRANSACTION_SCORES, scores.ACCOUNT_SCORES)
#: The warehouse tables an analyst sees: the batch accounting, and what anonymised accounts left behind.
#: Consent state, holds and data-subject requests stay out: they are about named subjects.
WAREHOUSE_TABLES = ("batch_ledger", "anonymous_aggregates")
#: Read from the same copy, never shown: whose consent covers a purpose that needs it (2.8).
CONSENT_STATE = ("consent_decisions",)
_EMPTY = {lake.EVENTS: lake_schema, lake.LABELS: label_schema}
#: The derived views every snapshot has, by name.
VIEWS = {"device_scores": views.DEVICE_SCORES, "device_accounts": views.DEVICE_ACCOUNTS, "aggregates": views.AGGREGATES}
_LITERAL = re.compile(r"'((?:[^']|'')*)'")


class RawIdentifierError(ValueError):
    """A raw identifier (or anything that is not a pseudonym) where the interface takes pseudonyms only."""


def _refuse_raw(value: str, what: str) -> str:
    """``value`` when it is a pseudonym; otherwise :class:`RawIdentifierError`, naming the kind it looks like."""
    if isinstance(value, str) and is_pseudonym(value):
        return value
    found = redact_text(str(value)).identifiers
    kind = f"a raw {found[0][0]}" if found else "not a pseudonym"
    raise RawIdentifierError(
        f"{what}: the value given is {kind}. The analyst interface takes pseudonyms only (the `_pid` columns, "
        "32 hex digits) and holds no key to make one; a person's data is found by a data-subject request "
        "(`devicerisk request access`)."
    )


@dataclass(frozen=True, slots=True)
class AccountView:
    """One account's rows in the snapshot, for a drill-down."""

    account_pid: str
    events: duckdb.DuckDBPyRelation
    transaction_scores: duckdb.DuckDBPyRelation
    account_scores: duckdb.DuckDBPyRelation
    labels: duckdb.DuckDBPyRelation
    devices: duckdb.DuckDBPyRelation


@dataclass
class AnalystLake:
    """A read-only snapshot of the stores (see the module's documentation). Use :func:`open_lake`."""

    versions: dict[str, int | None]
    opened_at: datetime
    _con: duckdb.DuckDBPyConnection = field(repr=False)

    # -- the tables ---------------------------------------------------------------------------------------
    def events(self) -> duckdb.DuckDBPyRelation:
        """The treated events (the contract's lake columns), at the pinned version."""
        return self._con.table(lake.EVENTS)

    def labels(self) -> duckdb.DuckDBPyRelation:
        """The fraud team's labels: ``subject_id_pid`` in the domain of ``subject_type`` (see the contract)."""
        return self._con.table(lake.LABELS)

    def transaction_scores(self) -> duckdb.DuckDBPyRelation:
        """Transaction scores (0–100), levels, reasons and model version; joins ``events`` on ``event_id``."""
        return self._table(scores.TRANSACTION_SCORES)

    def account_scores(self) -> duckdb.DuckDBPyRelation:
        """Account scores, one per account and scoring run (``as_of``)."""
        return self._table(scores.ACCOUNT_SCORES)

    def device_scores(self) -> duckdb.DuckDBPyRelation:
        """One row per device (the contract's device key): accounts seen on it, emulator and root signals,
        and its transactions' scores."""
        return self._con.table("device_scores")

    def device_accounts(self) -> duckdb.DuckDBPyRelation:
        """The device graph's edges: each device key and each account seen on it, with counts and times."""
        return self._con.table("device_accounts")

    def ledger(self) -> duckdb.DuckDBPyRelation:
        """The batch ledger as copied when the snapshot was opened: read = accepted + quarantined + ..."""
        return self._con.table("batch_ledger")

    def aggregates(self) -> duckdb.DuckDBPyRelation:
        """Events per day and type, with the counts anonymised accounts left behind (``anonymised_events``)."""
        return self._con.table("aggregates")

    def sql(self, query: str, params: dict[str, object] | None = None) -> duckdb.DuckDBPyRelation:
        """Any read-only query over the snapshot's tables (``events``, ``labels``, ``transaction_scores``,
        ``account_scores``, ``batch_ledger``, ``anonymous_aggregates``) and views (``device_scores``,
        ``device_accounts``, ``aggregates``). A string literal holding a raw
        identifier is refused: the tables hold none, so such a query could only look for a person."""
        for literal in _LITERAL.findall(query):
            if redact_text(literal.replace("''", "'")).identifiers:
                _refuse_raw(literal, "query")
        return self._con.sql(query, params=params)

    # -- lookups by pseudonym ------------------------------------------------------------------------------
    def account(self, account_pid: str) -> AccountView:
        """Everything the snapshot holds on one account, by its pseudonym (a raw id is refused)."""
        pid = _refuse_raw(account_pid, "account lookup")
        by = f"account_id_pid = '{pid}'"  # a checked pseudonym: 32 hex digits, nothing else
        return AccountView(
            pid,
            self.events().filter(by).order("event_time"),
            self.transaction_scores().filter(by).order("event_time"),
            self.account_scores().filter(by).order("as_of"),
            self.labels().filter(by).order("reported_at"),
            self.device_accounts().filter(by),
        )

    def device(self, device_key: str) -> duckdb.DuckDBPyRelation:
        """The accounts seen on one device, by its device key (a raw IMEI or MAC is refused)."""
        key = _refuse_raw(device_key, "device lookup")
        return self.device_accounts().filter(f"device_key = '{key}'").order("first_seen")

    # -- display and lifetime --------------------------------------------------------------------------------
    @staticmethod
    def masked(
        relation: duckdb.DuckDBPyRelation | pa.Table, columns: tuple[str, ...] = ("device_key",)
    ) -> pd.DataFrame:
        """A relation as a pandas frame for display, every pseudonym masked (the project's one masking)."""
        table = relation if isinstance(relation, pa.Table) else relation.to_arrow_table()
        return mask_columns(table, columns).to_pandas()

    def _table(self, name: str) -> duckdb.DuckDBPyRelation:
        if self.versions.get(name) is None:
            raise LookupError(f"the lake has no {name} yet: run the score flow (`devicerisk risk score`)")
        return self._con.table(name)

    def close(self) -> None:
        """Release the snapshot (its in-memory connection); the stores were never locked."""
        self._con.close()

    def __enter__(self) -> AnalystLake:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()


def open_lake(data_dir: str | Path | None = None, *, purpose: str, actor: str | None = None) -> AnalystLake:
    """A read-only snapshot of the stores under ``data_dir`` (default: ``DEVICERISK_DATA_DIR``, else ``data``),
    for ``purpose``: one the contract registers (``contract/purposes.py``; an unregistered one fails).

    The events are those of the event types serving the purpose, and for a purpose that needs consent (2.8), of
    the accounts whose recorded consent covers it. The opening is audited (``actor``: default the login name)
    with its purpose. No pseudonym or quarantine key is loaded; the audit key signs the record.
    """
    serves = purposes.require(purpose)
    settings = Settings.at(data_dir)
    lake_dir, warehouse_path = settings.lake_dir, settings.warehouse_path
    trail = audit_trail(settings)
    del settings  # it may carry keys given in the environment: the snapshot keeps none
    con = duckdb.connect(":memory:")
    versions: dict[str, int | None] = {}
    state = warehouse.read_copy(warehouse_path, (*WAREHOUSE_TABLES, *CONSENT_STATE))
    for name in LAKE_TABLES:
        found = lake.pinned(lake_dir, name)
        versions[name] = None if found is None else found[0]
        if found is not None:
            con.register(name, _for_purpose(found[1], serves, state) if name == lake.EVENTS else found[1])
        elif name in _EMPTY:
            con.register(name, _EMPTY[name]().empty_table())
    for name in WAREHOUSE_TABLES:
        con.register(name, state[name])
    if versions[scores.TRANSACTION_SCORES] is None:  # the device view joins scores: none yet, none joined
        con.execute(
            "CREATE VIEW transaction_scores AS SELECT NULL::VARCHAR AS event_id, NULL::DOUBLE AS score, "
            "NULL::VARCHAR AS level WHERE false"
        )
    for name, query in VIEWS.items():
        con.execute(f"CREATE VIEW {name} AS {query}")
    # queries read the registered snapshot only: no file, no other database, and no way to turn that back on
    con.execute("SET enable_external_access = false")
    con.execute("SET lock_configuration = true")
    opened = AnalystLake(versions, datetime.now(UTC), con)
    audit.append(trail, actor=actor or _login(), role="analyst", action="analytics.open_lake", purpose=serves.name)
    return opened


def _for_purpose(events: ds.Dataset, serves: purposes.Purpose, state: dict[str, pa.Table]) -> ds.Dataset:
    """The events a reader for ``serves`` may see: of its event types and, if it needs consent, of the accounts
    whose recorded consent covers it (the filter is the dataset's own: no query on the snapshot can lift it)."""
    keep = ds.field("event_type").isin(sorted(serves.event_types))
    if serves.needs_consent:
        keep &= ds.field("account_id_pid").isin(covered_accounts(state["consent_decisions"], serves.name))
    return events.filter(keep)


def _login() -> str:
    """The analyst's login name for the audit record (``analyst`` when it cannot be told, or is not a plain name)."""
    try:
        return audit.check_name("actor", getpass.getuser())
    except (KeyError, OSError, audit.AuditError):
        return "analyst"
