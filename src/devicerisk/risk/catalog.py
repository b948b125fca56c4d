"""The model's inputs: every feature's name, how a reason words it, and the declared ones' windows.

``ENGINE_FEATURES`` are computed by the SQL in ``features.py`` (and, for scoring, by the C engine in
``_windows.c``); ``WINDOWS`` are declarations that ``declared.py`` computes for training and scoring alike.
The model's matrix holds them in ``FEATURES`` order.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Feature:
    """One model input and how an analyst reads it in a reason."""

    name: str
    reason: str  # a format string of ``v`` (the value)
    kind: str = "count"  # count | flag | ratio | hours
    absent: str | None = None  # how a flag that is not set reads, when it is a reason (see ``when_absent``)

    @property
    def when_absent(self) -> str:
        """How this flag reads when it is not set: ``absent``, else "no" and its reason."""
        return self.absent or f"no {self.reason}"


@dataclass(frozen=True, slots=True)
class Window:
    """A declared feature: an aggregate of the transactions before t of one entity, over ``[t - width, t)``.

    ``entity``: ``acct`` (the paying account), ``cp`` (the counterparty paid) or ``acct_cp`` (the pair).
    ``aggregate``: ``count``, ``sum`` and ``mean`` of amounts, ``distinct_accounts``, ``fraud_share`` (the
    share of its transactions reported as fraud by t), ``age_h`` (hours since the first in the window) or
    ``new`` (1 when there is none). ``risk/declared.py`` computes them for training and scoring alike.
    """

    name: str
    reason: str
    entity: str
    aggregate: str
    width: int  # microseconds
    kind: str = "count"  # as Feature.kind
    absent: str | None = None  # as Feature.absent

    @property
    def feature(self) -> Feature:
        return Feature(self.name, self.reason, self.kind, self.absent)


_D_US = 86_400_000_000
HOUR_US = 3_600_000_000

#: Declared features: adding one is one line here (and its reason wording).
WINDOWS: tuple[Window, ...] = (
    # the account's spending
    Window("acct_txn_30d", "{v:.0f} transactions by this account in 30 d", "acct", "count", 30 * _D_US),
    Window("acct_amount_sum_24h", "{v:.2f} paid by this account in 24 h", "acct", "sum", _D_US, "ratio"),
    Window("acct_amount_sum_7d", "{v:.2f} paid by this account in 7 d", "acct", "sum", 7 * _D_US, "ratio"),
    Window("acct_amount_sum_30d", "{v:.2f} paid by this account in 30 d", "acct", "sum", 30 * _D_US, "ratio"),
    Window("acct_amount_mean_24h", "mean payment {v:.2f} by this account in 24 h", "acct", "mean", _D_US, "ratio"),
    Window("acct_amount_mean_7d", "mean payment {v:.2f} by this account in 7 d", "acct", "mean", 7 * _D_US, "ratio"),
    Window("acct_amount_mean_30d", "mean payment {v:.2f} by this account in 30 d", "acct", "mean", 30 * _D_US, "ratio"),
    # the counterparty
    Window("cp_txn_7d", "{v:.0f} payments to this counterparty in 7 d", "cp", "count", 7 * _D_US),
    Window("cp_accounts_24h", "counterparty paid by {v:.0f} accounts in 24 h", "cp", "distinct_accounts", _D_US),
    Window("cp_accounts_7d", "counterparty paid by {v:.0f} accounts in 7 d", "cp", "distinct_accounts", 7 * _D_US),
    Window(
        "cp_fraud_share_7d",
        "{v:.2f} of the counterparty's payments in 7 d reported as fraud",
        "cp",
        "fraud_share",
        7 * _D_US,
        "ratio",
    ),
    Window(
        "cp_fraud_share_30d",
        "{v:.2f} of the counterparty's payments in 30 d reported as fraud",
        "cp",
        "fraud_share",
        30 * _D_US,
        "ratio",
    ),
    Window("cp_age_h", "counterparty first paid {v:.1f} h before (in 31 d)", "cp", "age_h", 31 * _D_US, "hours"),
    Window(
        "cp_new_for_account",
        "first payment to this counterparty in 31 d",
        "acct_cp",
        "new",
        31 * _D_US,
        "flag",
        "counterparty paid before by this account in 31 d",
    ),
)

#: The inputs the SQL (and the C engine) compute, in matrix order; the declared ones follow them.
ENGINE_FEATURES: tuple[Feature, ...] = (
    # device graph
    Feature("accounts_on_device_24h", "device seen on {v:.0f} accounts in 24 h"),
    Feature("accounts_on_device_31d", "device seen on {v:.0f} accounts in 31 d"),
    Feature("devices_of_account_7d", "account used {v:.0f} devices in 7 d"),
    Feature("devices_of_account_31d", "account used {v:.0f} devices in 31 d"),
    Feature("accounts_on_network_24h", "network prefix used by {v:.0f} accounts in 24 h"),
    # velocity per account
    Feature("acct_txn_1h", "{v:.0f} transactions by this account in the hour before"),
    Feature("acct_txn_24h", "{v:.0f} transactions by this account in 24 h"),
    Feature("acct_txn_7d", "{v:.0f} transactions by this account in 7 d"),
    Feature("acct_failed_pay_1h", "{v:.0f} failed payments by this account in the hour before"),
    Feature("acct_failed_pay_24h", "{v:.0f} failed payments by this account in 24 h"),
    Feature("acct_login_24h", "{v:.0f} logins to this account in 24 h"),
    Feature("acct_login_failed_24h", "{v:.0f} failed logins to this account in 24 h"),
    Feature("acct_login_failed_7d", "{v:.0f} failed logins to this account in 7 d"),
    # velocity per device
    Feature("dev_txn_1h", "{v:.0f} transactions from this device in the hour before"),
    Feature("dev_txn_24h", "{v:.0f} transactions from this device in 24 h"),
    Feature("dev_failed_pay_24h", "{v:.0f} failed payments from this device in 24 h"),
    Feature("dev_login_24h", "{v:.0f} logins from this device in 24 h"),
    # novelty
    Feature("device_age_for_account_h", "device first used on this account {v:.1f} h before", "hours"),
    Feature("network_age_for_account_h", "network prefix first used by this account {v:.1f} h before", "hours"),
    Feature(
        "new_sim_country",
        "SIM country not seen on this account in 31 d",
        "flag",
        "SIM country seen on this account in 31 d",
    ),
    Feature("hours_since_registration", "account registered {v:.1f} h before", "hours"),
    Feature("hours_since_password_change", "password changed {v:.1f} h before", "hours"),
    # device integrity
    Feature("emulator_model", "emulator model string", "flag"),
    Feature("emulator_hardware", "emulator hardware string", "flag"),
    Feature("rooted", "device reports root", "flag", "device does not report root"),
    Feature("root_app", "root tool installed or running", "flag"),
    Feature("hook_app", "hooking framework installed or running", "flag"),
    Feature("imei_checksum_bad", "invalid IMEI checksum", "flag", "valid IMEI checksum"),
    Feature("app_versions_behind", "app {v:.0f} major versions behind the newest", "count"),
    Feature("crash_rate_7d", "{v:.2f} crashes per app start in 7 d", "ratio"),
    # geography
    Feature(
        "sim_tz_mismatch",
        "SIM country differs from the time zone's country",
        "flag",
        "SIM country matches the time zone's",
    ),
    Feature(
        "sim_lang_mismatch",
        "SIM country differs from the language region",
        "flag",
        "SIM country matches the language region",
    ),
    Feature(
        "tz_lang_mismatch",
        "time zone country differs from the language region",
        "flag",
        "time zone country matches the language region",
    ),
    # amount and counterparty
    Feature("amount_to_median", "amount {v:.1f}× this account's median", "ratio"),
    Feature("amount", "amount {v:.2f}", "ratio"),
    Feature("failed_status", "payment declined", "flag", "payment not declined"),
    Feature("bank_transfer", "bank transfer", "flag", "not a bank transfer"),
    Feature("counterparty_fraud_reports", "counterparty in {v:.0f} fraud reports on transactions of the last 31 d"),
    Feature("account_fraud_reports", "account in {v:.0f} earlier fraud reports"),
    Feature("device_fraud_reports", "device linked to {v:.0f} fraud reports in 31 d"),
)
ENGINE_FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in ENGINE_FEATURES)
#: The model's inputs, in matrix order.
FEATURES: tuple[Feature, ...] = ENGINE_FEATURES + tuple(w.feature for w in WINDOWS)
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in FEATURES)
BY_NAME: dict[str, Feature] = {f.name: f for f in FEATURES}
