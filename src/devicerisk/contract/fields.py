"""The telemetry data contract: every input field, declared once.

Validation, the privacy transform, ``docs/data-contract.md``, the JSON Schema, the leak test and
retention are all driven by this table. Adding a field is one line in ``FIELDS``.
Clause numbers refer to the platform's privacy policy.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from devicerisk.contract.model import (
    DROP,
    KEEP,
    EventType,
    Field,
    Kind,
    RetentionClass,
    minimise,
    pseudonymise,
    pseudonymise_by,
)
from devicerisk.contract.model import Sensitivity as S

SCHEMA_VERSION = 1
CONTRACT_VERSION = "1.1.0"

#: Records longer than this many bytes are quarantined unread.
MAX_RECORD_BYTES = 64 * 1024
#: A batch's bytes, once decompressed, are read up to this bound (``DEVICERISK_MAX_BATCH_BYTES`` sets it);
#: the rest of the file is quarantined unread.
MAX_BATCH_BYTES = 256 << 20
#: No time of the contract (event, label) is earlier: a clock reset to 1970, or year 1, is no time of an event.
EARLIEST_TIME = datetime(2000, 1, 1, tzinfo=UTC)
#: How far ahead of ingest a time may run (clock drift); ``DEVICERISK_MAX_FUTURE_SKEW_HOURS`` sets it.
FUTURE_SKEW = timedelta(hours=24)

RETENTION_CLASSES: tuple[RetentionClass, ...] = (
    RetentionClass("landing_raw", 3, "Raw batches as received; only the landing zone holds them."),
    RetentionClass("quarantine", 30, "Rejected records, encrypted, with their reasons."),
    RetentionClass("operation_log", 90, "Operation and browsing logs (2.6.2)."),
    RetentionClass("device_info", 180, "Device information and identifiers (2.6.1, 2.6.2)."),
    RetentionClass("crash_perf", 30, "Crash reports and performance data (2.6.1)."),
    RetentionClass("app_list", 30, "Summaries of installed and running applications (2.6.3)."),
    RetentionClass("transaction", 1095, "Transaction records, kept as long as the law requires."),
    RetentionClass("account", 1095, "Account, consent and cancellation events (6.1, 6.3, 7)."),
    RetentionClass("label", 1095, "Fraud-team feedback labels."),
    RetentionClass("score", 1095, "Risk scores and their serving snapshots, kept as long as the law requires."),
    RetentionClass("model_snapshot", 180, "Feature and training snapshots kept with a model version."),
    RetentionClass("audit_log", 1095, "The audit trail of actions on personal data (5.2.1, 5.2.3)."),
    RetentionClass("request_export", 30, "Access exports prepared for data subjects (6.2.1), until handed over."),
    RetentionClass("event", None, "Envelope fields: the retention class of the event's type."),
)

RISK = "risk_control"  # clause 2.6: judge account and transaction risk, prevent fraud
ACCOUNT = "account_management"  # clauses 6.1, 6.3, 7: consent, cancellation, minors

EVENT_TYPES: tuple[EventType, ...] = (
    EventType("device_info", "Device model, settings and environment", "2.6.1, 2.6.2", RISK, "device_info"),
    EventType("operation", "Page views, clicks and searches", "2.6.2", RISK, "operation_log"),
    EventType("transaction", "Payment and order transactions", "1.2, 2.6.2", RISK, "transaction"),
    EventType("crash", "Crash reports and performance samples", "2.6.1", RISK, "crash_perf"),
    EventType("app_list", "Installed and running applications", "2.6.1, 2.6.3", RISK, "app_list"),
    EventType("account", "Registration, login, consent, cancellation, age", "6.1, 6.3, 7", ACCOUNT, "account"),
)

_DEV = frozenset({"device_info"})
_OP = frozenset({"operation"})
_TXN = frozenset({"transaction"})
_CRASH = frozenset({"crash"})
_APPS = frozenset({"app_list"})
_ACC = frozenset({"account"})
_LANG = frozenset({"device_info", "operation"})

_ET = tuple(e.name for e in EVENT_TYPES)

#: A label's ``subject_id`` is pseudonymised in the domain of its ``subject_type``: a transaction label's in the
#: transaction domain (it joins ``events.transaction_id_pid``), an account label's in the account domain.
LABEL_SUBJECT_DOMAINS = {"transaction": "transaction", "account": "account"}

#: The device key: the first of these pseudonyms an event carries (IMEI, Android ID, IDFV, MAC, OAID, IDFA).
#: The features, the signal log, subject lookups and the analysts' device view all name a device by it.
DEVICE_KEY_COLUMNS = (
    "device_imei_pid",
    "device_android_id_pid",
    "device_idfv_pid",
    "device_mac_pid",
    "device_oaid_pid",
    "device_idfa_pid",
)
#: The device key of an events row, as SQL: the one expression every query that names a device uses.
DEVICE_KEY_SQL = f"coalesce({', '.join(DEVICE_KEY_COLUMNS)})"
_ACCOUNT_ACTIONS = (
    "register",
    "login",
    "login_failed",
    "password_change",
    "cancel",
    "consent",
    "age_declared",
)

# fmt: off
# path, kind, data category (fideslang style), sensitivity, treatments, retention, ...
FIELDS: tuple[Field, ...] = (
    # -- envelope: on every event -------------------------------------------------------------
    Field("schema_version", Kind.INT, "system.operations", S.NONE, (KEEP,), "event", required=True),
    Field("event_id", Kind.STRING, "system.operations", S.NONE, (KEEP,), "event", required=True, max_length=64,
          record_key=True),
    Field("event_type", Kind.STRING, "system.operations", S.NONE, (KEEP,), "event", required=True, enum=_ET),
    Field("event_time", Kind.TIMESTAMP, "user.behavior", S.PERSONAL, (KEEP,), "event", required=True),
    Field("account_id", Kind.STRING, "user.account.account_id", S.SENSITIVE, (pseudonymise("account"),), "event",
          description="null for unlogged use (2.1)"),
    Field("app.platform", Kind.STRING, "system.operations", S.NONE, (KEEP,), "event", required=True,
          enum=("android", "ios", "web")),
    Field("app.version", Kind.STRING, "user.device", S.NONE, (KEEP,), "event", max_length=32),
    Field("device.model", Kind.STRING, "user.device", S.PERSONAL, (KEEP, minimise("emulator_model")), "event",
          max_length=128),
    Field("device.manufacturer", Kind.STRING, "user.device", S.PERSONAL, (KEEP,), "event", max_length=64),
    Field("device.os", Kind.STRING, "user.device", S.NONE, (KEEP,), "event", max_length=32),
    Field("device.os_version", Kind.STRING, "user.device", S.NONE, (KEEP,), "event", max_length=32),
    Field("device.imei", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("imei"), minimise("imei")), "event",
          description="IMEI (15 digits) or IMEISV (16); both map to one pseudonym"),
    Field("device.meid", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("meid"),), "event"),
    Field("device.mac", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("mac"), minimise("mac")), "event"),
    Field("device.idfa", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("idfa"),), "event"),
    Field("device.idfv", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("idfv"),), "event"),
    Field("device.oaid", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("oaid"),), "event"),
    Field("device.android_id", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("android_id"),), "event"),
    Field("device.imsi", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("imsi"), minimise("imsi")), "event"),
    Field("device.iccid", Kind.STRING, "user.device.device_id", S.PERSONAL, (pseudonymise("iccid"), minimise("iccid")), "event"),
    Field("network.type", Kind.STRING, "user.device", S.NONE, (KEEP,), "event", max_length=16),
    Field("network.ip", Kind.STRING, "user.device.ip_address", S.PERSONAL, (pseudonymise("ip"), minimise("ip")), "event"),
    # -- device info (2.6.1, 2.6.2) -------------------------------------------------------------
    Field("payload.language", Kind.STRING, "user.device", S.NONE, (KEEP,), "device_info", _LANG, max_length=35),
    Field("payload.timezone", Kind.STRING, "user.device", S.NONE, (KEEP,), "device_info", _DEV, max_length=64),
    Field("payload.hardware", Kind.STRING, "user.device", S.NONE, (KEEP, minimise("emulator_hardware")), "device_info", _DEV,
          max_length=64),
    Field("payload.screen", Kind.STRING, "user.device", S.NONE, (KEEP,), "device_info", _DEV, max_length=16),
    Field("payload.rooted", Kind.BOOL, "user.device", S.NONE, (KEEP,), "device_info", _DEV),
    Field("payload.debuggable", Kind.BOOL, "user.device", S.NONE, (KEEP,), "device_info", _DEV),
    Field("payload.adb_enabled", Kind.BOOL, "user.device", S.NONE, (KEEP,), "device_info", _DEV),
    Field("payload.developer_mode", Kind.BOOL, "user.device", S.NONE, (KEEP,), "device_info", _DEV),
    Field("payload.device_name", Kind.STRING, "user.name", S.PERSONAL, (DROP,), "device_info", _DEV,
          description="user-chosen name such as 'Li Wei's phone'"),
    # -- operation and browsing logs (2.6.2) ---------------------------------------------------
    Field("payload.action", Kind.STRING, "user.behavior", S.NONE, (KEEP,), "operation_log", _OP | _ACC, required=True,
          enum=("view", "click", "search", *_ACCOUNT_ACTIONS)),
    Field("payload.page", Kind.STRING, "user.behavior.browsing_history", S.PERSONAL, (KEEP,), "operation_log", _OP,
          max_length=128),
    Field("payload.search_text", Kind.STRING, "user.behavior.search_history", S.PERSONAL, (DROP,), "operation_log", _OP),
    Field("payload.user_agent", Kind.STRING, "user.device.browsing_history", S.PERSONAL, (minimise("user_agent"),),
          "operation_log", _OP),
    Field("payload.duration_ms", Kind.INT, "user.behavior", S.NONE, (KEEP,), "operation_log", _OP),
    # -- transaction records (1.2: property information) -----------------------------------------
    Field("payload.transaction_id", Kind.STRING, "user.financial", S.SENSITIVE, (pseudonymise("transaction"),),
          "transaction", _TXN, required=True),
    Field("payload.amount", Kind.FLOAT, "user.financial", S.SENSITIVE, (KEEP,), "transaction", _TXN, required=True),
    Field("payload.currency", Kind.STRING, "user.financial", S.NONE, (KEEP,), "transaction", _TXN, required=True,
          max_length=3),
    Field("payload.channel", Kind.STRING, "user.financial", S.NONE, (KEEP,), "transaction", _TXN,
          enum=("card", "wallet", "bank_transfer", "cash_on_delivery")),
    Field("payload.institution", Kind.STRING, "user.financial", S.NONE, (KEEP,), "transaction", _TXN, max_length=64),
    Field("payload.status", Kind.STRING, "user.financial", S.NONE, (KEEP,), "transaction", _TXN, required=True,
          enum=("success", "failed", "pending")),
    Field("payload.counterparty", Kind.STRING, "user.financial", S.PERSONAL, (pseudonymise("counterparty"),),
          "transaction", _TXN),
    Field("payload.bank_account", Kind.STRING, "user.financial.bank_account", S.SENSITIVE, (DROP,), "transaction", _TXN),
    # -- crash reports and performance data (2.6.1) ----------------------------------------------
    Field("payload.kind", Kind.STRING, "system.operations", S.NONE, (KEEP,), "crash_perf", _CRASH, required=True,
          enum=("crash", "anr", "perf")),
    Field("payload.exception_type", Kind.STRING, "system.operations", S.NONE, (KEEP,), "crash_perf", _CRASH,
          max_length=128),
    Field("payload.stack_trace", Kind.STRING, "system.operations", S.PERSONAL, (minimise("stack_signature"),),
          "crash_perf", _CRASH, description="free text may hold personal data; only a signature is kept"),
    Field("payload.memory_mb", Kind.INT, "system.operations", S.NONE, (KEEP,), "crash_perf", _CRASH),
    Field("payload.cpu_pct", Kind.FLOAT, "system.operations", S.NONE, (KEEP,), "crash_perf", _CRASH),
    Field("payload.startup_ms", Kind.INT, "system.operations", S.NONE, (KEEP,), "crash_perf", _CRASH),
    # -- installed and running applications (2.6.1, 2.6.3) --------------------------------------
    Field("payload.installed", Kind.STRING_LIST, "user.device", S.PERSONAL, (minimise("app_list"),), "app_list", _APPS),
    Field("payload.running", Kind.STRING_LIST, "user.device", S.PERSONAL, (minimise("app_list"),), "app_list", _APPS),
    # -- account events (6.1, 6.3, 7) -------------------------------------------------------------
    Field("payload.phone", Kind.STRING, "user.contact.phone_number", S.PERSONAL, (pseudonymise("phone"), minimise("phone")),
          "account", _ACC),
    Field("payload.real_name", Kind.STRING, "user.name", S.PERSONAL, (DROP,), "account", _ACC),
    Field("payload.id_number", Kind.STRING, "user.government_id", S.SENSITIVE, (DROP,), "account", _ACC),
    Field("payload.purpose", Kind.STRING, "system.operations", S.NONE, (KEEP,), "account", _ACC,
          enum=(RISK, "marketing", "personalisation")),
    Field("payload.granted", Kind.BOOL, "system.operations", S.NONE, (KEEP,), "account", _ACC),
    Field("payload.birth_year", Kind.INT, "user.demographic.age_range", S.PERSONAL, (minimise("minor"),), "account", _ACC),
    Field("payload.guardian_consent", Kind.BOOL, "user.demographic", S.NONE, (KEEP,), "account", _ACC),
)

#: Fraud-team feedback labels: a separate input, pseudonymised the same way.
LABEL_FIELDS: tuple[Field, ...] = (
    Field("label_id", Kind.STRING, "system.operations", S.NONE, (KEEP,), "label", required=True, max_length=64,
          record_key=True),
    Field("subject_type", Kind.STRING, "system.operations", S.NONE, (KEEP,), "label", required=True,
          enum=("transaction", "account")),
    Field("subject_id", Kind.STRING, "user.account.account_id", S.SENSITIVE,
          (pseudonymise_by("subject_type", LABEL_SUBJECT_DOMAINS),), "label", required=True,
          description="transaction id (subject_type transaction: pseudonymised in the transaction domain, it joins "
                      "events.transaction_id_pid) or account id (subject_type account: in the account domain, it "
                      "joins account_id_pid)"),
    Field("label", Kind.STRING, "system.operations", S.NONE, (KEEP,), "label", required=True, enum=("fraud", "legitimate")),
    Field("fraud_type", Kind.STRING, "system.operations", S.NONE, (KEEP,), "label", max_length=64,
          description="the kind of fraud, e.g. card_fraud, fake_account, mule, account_takeover"),
    Field("reported_at", Kind.TIMESTAMP, "system.operations", S.NONE, (KEEP,), "label", required=True),
    Field("fraud_from", Kind.TIMESTAMP, "system.operations", S.NONE, (KEEP,), "label",
          description="account labels: when the account came into fraudulent hands (a takeover); absent: it always was"),
)


# fmt: on


def event_type(name: str) -> EventType:
    """The declared event type called ``name``."""
    return next(e for e in EVENT_TYPES if e.name == name)


def retention_class(name: str) -> RetentionClass:
    """The declared retention class called ``name``."""
    return next(r for r in RETENTION_CLASSES if r.name == name)
