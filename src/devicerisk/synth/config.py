"""Configuration and result types of the synthetic telemetry generator, and the scenario names."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

#: Fraud scenarios planted in the data, with their default weights (share of the accounts they involve:
#: fraudsters' accounts, takeover victims, and the victims of the payment scenarios).
FRAUD_SCENARIOS: dict[str, float] = {
    "device_farm": 0.22,
    "emulator": 0.09,
    "rooted_hooked": 0.09,
    "account_takeover": 0.09,
    "card_testing": 0.10,
    "promo_abuse": 0.15,
    "compromised_merchant": 0.07,
    "compromised_customer": 0.07,
    "large_amount": 0.05,
    "push_payment_scam": 0.07,
}
#: Fewest accounts a scenario gets when its weight is positive (a farm needs >= 10 accounts on one device).
SCENARIO_MIN_ACCOUNTS: dict[str, int] = {
    "device_farm": 10,
    "emulator": 2,
    "rooted_hooked": 2,
    "account_takeover": 2,
    "card_testing": 2,
    "promo_abuse": 5,
    "compromised_merchant": 6,
    "compromised_customer": 2,
    "large_amount": 2,
    "push_payment_scam": 6,
}
#: Scenarios whose fraud is done to honest accounts (victims), not by the account's holder: the victim disputes
#: the fraudulent payments (transaction labels) and the account is not fraudulent.
VICTIM_SCENARIOS: frozenset[str] = frozenset({"compromised_merchant", "compromised_customer", "large_amount"})
#: How often a fraudulent transaction is reported on its own: a victim disputes it more often than anyone
#: reports a fraudster's own payment.
REPORT_P = {"victim": 0.6, "fraudster": 0.3}
#: Tags on legitimate accounts that look like fraud to any single rule.
LOOKALIKE_TAGS: tuple[str, ...] = (
    "family_device",
    "traveller",
    "limited_ad_tracking",
    "old_version_crash",
    "rooted_legit",
    "small_purchase_burst",
    "bulk_shipper",
    "pickup_kiosk",
    "expat",
    "new_phone",
    "shared_network",
    "app_player",
    "rent_payer",
    "big_purchase",
)
#: Other tags recorded in the truth file (identifier quirks and account-lifecycle events).
OTHER_TAGS: tuple[str, ...] = (
    "invalid_imei",
    "imeisv",
    "placeholder_imei",
    "placeholder_mac",
    "randomised_mac",
    "minor_with_guardian",
    "minor_without_guardian",
    "consent_withdrawn",
    "cancelled",
    "registered_in_window",
)


@dataclass(frozen=True)
class SynthConfig:
    """What to generate. The same config (and seed) always gives byte-identical output."""

    accounts: int = 2000
    days: int = 7
    start: datetime = datetime(2026, 11, 1, tzinfo=UTC)
    seed: int = 7
    events_per_batch: int = 50_000
    fraud_rate: float = 0.03  # share of accounts in a fraud scenario
    scenario_mix: dict[str, float] | None = None  # weights per scenario name, None = defaults
    gzip: bool = True
    late_rate: float = 0.003  # share of events buffered offline and delivered hours later

    def validate(self) -> None:
        if self.accounts < 1 or self.days < 1 or self.events_per_batch < 1:
            raise ValueError("accounts, days and events_per_batch must be positive")
        if self.start.tzinfo is None:
            raise ValueError("start must be timezone-aware")
        if not 0.0 <= self.fraud_rate < 1.0 or not 0.0 <= self.late_rate <= 0.5:
            raise ValueError("fraud_rate must be in [0, 1) and late_rate in [0, 0.5]")
        unknown = set(self.scenario_mix or {}) - set(FRAUD_SCENARIOS)
        if unknown:
            raise ValueError(f"unknown scenarios {sorted(unknown)}; known: {sorted(FRAUD_SCENARIOS)}")
        if any(w < 0 for w in (self.scenario_mix or {}).values()):
            raise ValueError("scenario weights must be >= 0")

    def mix(self) -> dict[str, float]:
        """Scenario weights, normalised, in the fixed order of ``FRAUD_SCENARIOS``."""
        raw = FRAUD_SCENARIOS if self.scenario_mix is None else self.scenario_mix
        weights = {name: float(raw.get(name, 0.0)) for name in FRAUD_SCENARIOS}
        total = sum(weights.values())
        return {k: v / total for k, v in weights.items() if v > 0} if total > 0 else {}


@dataclass(frozen=True)
class SynthResult:
    """What :func:`generate` wrote."""

    events: int
    batches: list[Path]
    label_files: list[Path]
    truth_file: Path
    accounts: int
