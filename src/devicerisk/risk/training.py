"""Training both scores on the lake: time split, targets from feedback labels, thresholds, evaluation.

The window ``[data start, end)`` is split by time: train (the last fifth of it calibrates, or a random
fifth of its rows when the last holds too few frauds), then a gap at least as long as the observed
label delay (``maturity``), then test. Training targets use only labels reported by the end of the gap
(the label cut), as a model trained then would have had them; the gap makes them mature: a training row
is at least one label delay old at the cut, so its fraud, if any, has been reported. The targets follow the
contract's label semantics (``labels.fraud_marks``): a transaction is fraud when it was reported, or
when its account was reported from a time at or before it; a report never spreads to a victim's other,
honest transactions. Everything else counts as legitimate. The test window is judged against the
ground truth when one is given (synthetic data) and against every label in the lake otherwise; then the
test window ends one label delay before the newest data, so its frauds are reported too.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

import numpy as np
import pyarrow as pa

from devicerisk import engine
from devicerisk.risk import features as F
from devicerisk.risk import signals
from devicerisk.risk.evaluate import Evaluation, evaluate
from devicerisk.risk.labels import fraud_marks
from devicerisk.risk.model import (
    MIN_CALIBRATION_POSITIVES,
    RiskModel,
    Thresholds,
    fit,
    thresholds_from_budget,
    to_score,
)

WARMUP = timedelta(days=1)  # the first day has no history for its windows: it is not trained on
ACTIVE = timedelta(days=7)  # an account probe covers the accounts active this long before its as-of time
#: The account score's training probes: one at the end of training and one every this long before it. One
#: probe alone holds few frauds (a fake account is closed once reported, and is active before that only).
PROBE_EVERY = timedelta(days=2)


class NotEnoughData(ValueError):
    """The lake does not span a training window, a label-delay gap and a test window yet."""


@dataclass(frozen=True, slots=True)
class Split:
    """The time split of one training run: train ``[start, train_end)``, gap, test ``[test_start, end)``.

    ``newest`` is the end of the data (later than ``end`` when the test's labels need time to arrive);
    ``training_mature`` / ``test_mature`` say whether the training rows / the test rows are at least
    ``label_delay_days`` old at the label cut / at ``newest``; ``notes`` say why not.
    """

    start: datetime
    train_end: datetime
    test_start: datetime
    end: datetime
    newest: datetime | None = None
    label_delay_days: float = 0.0
    training_mature: bool = True
    test_mature: bool = True
    notes: tuple[str, ...] = ()

    @property
    def test_days(self) -> float:
        return (self.end - self.test_start).total_seconds() / 86_400


@dataclass(slots=True)
class Trained:
    """One score's model, thresholds and held-out evaluation."""

    model: RiskModel
    thresholds: Thresholds
    evaluation: Evaluation
    test_scores: np.ndarray
    test_target: np.ndarray
    test_X: np.ndarray
    train_rows: int
    train_positives: int
    alerts_per_day: float = 0.0  # the held-out rows at ``highest``, per day
    budget_per_day: int = 0

    def floods(self) -> str | None:
        """Why this model would flood the fraud team (more than twice its alert budget at ``highest`` on the
        held-out rows, as tied scores do), or None. An unsupervised fallback's scores are ranks among the
        training rows, tied by construction; it is judged by the gate's other rules."""
        if self.model.kind == "supervised" and self.budget_per_day and self.alerts_per_day > 2 * self.budget_per_day:
            return (
                f"{self.alerts_per_day:.1f} held-out alerts a day at highest, more than twice the budget of "
                f"{self.budget_per_day}"
            )
        return None


@dataclass(slots=True)
class TrainingResult:
    split: Split
    transaction: Trained
    account: Trained
    notes: list[str] = field(default_factory=list)


def make_split(
    start: datetime,
    end: datetime,
    gap_days: float,
    test_days: float,
    delay_days: float = 0.0,
    labels_only: bool = False,
) -> Split:
    """Train, then a gap of at least ``gap_days`` and ``delay_days`` (the label delay), then test.

    The test ends at ``end`` (the newest data), or ``delay_days`` before it when it is judged on the
    feedback labels alone (``labels_only``): a test window whose frauds are not reported yet would make
    the gate compare models on missing labels. A lake too short for the label delay first gives up the
    longer gap, then the test's wait; the split is then marked immature and its notes say so.
    """
    mature_end = end - timedelta(days=delay_days) if labels_only else end
    tries = [(max(gap_days, delay_days), mature_end), (gap_days, mature_end), (gap_days, end)]
    for gap, test_end in dict.fromkeys(tries):  # in order, without repeats
        test_start = test_end - timedelta(days=test_days)
        train_end = test_start - timedelta(days=gap)
        if train_end > start + WARMUP:
            break
    else:
        raise NotEnoughData(
            f"the data ({start:%Y-%m-%d} to {end:%Y-%m-%d}) is too short for a {gap_days}-day gap "
            f"and a {test_days}-day test window"
        )
    training_mature, test_mature = gap >= delay_days, test_end == mature_end
    notes = []
    if not training_mature:
        notes.append(
            f"the lake is too short for a gap as long as the label delay ({delay_days:.1f} days): training "
            f"rows less than {delay_days:.1f} days old at the label cut have immature labels (fraud not "
            "reported yet counts as legitimate)"
        )
    if not test_mature:
        notes.append(
            f"the lake is too short to let the test window's labels arrive ({delay_days:.1f} days): "
            "judged on partly reported fraud, this model does not replace a champion"
        )
    return Split(start, train_end, test_start, test_end, end, delay_days, training_mature, test_mature, tuple(notes))


def matrix(features: pa.Table, names: list[str] | tuple[str, ...] = F.FEATURE_NAMES) -> np.ndarray:
    """The model matrix of a feature table (float64, NaN for missing)."""
    if features.num_rows == 0:
        return np.zeros((0, len(names)))
    return np.column_stack([features.column(n).to_numpy(zero_copy_only=False).astype(float) for n in names])


def fraud_targets(rows: pa.Table, labels: pa.Table, key: str, until: datetime | None) -> np.ndarray:
    """1 where a fraud label reported by ``until`` marks the row (``key`` is its own pseudonym), as the
    contract's label semantics say (``labels.fraud_marks``): no label spreads beyond what it names."""
    own = rows.select(["acct", "t"]).append_column("subject", rows.column(key))
    return fraud_marks(own, labels, until)


def maturity_weights(t: np.ndarray, split: Split) -> np.ndarray:
    """Per row, the weight of an unreported row from the gap (``[train_end, label cut)``) as legitimate: its
    age at the label cut over the label delay, capped at 1, so a row whose fraud may not be reported yet
    counts as legitimate only as far as its label has had time to arrive. 0 outside the gap.

    The gap's rows are the newest the model can learn from; leaving them out threw away the whole label
    delay (two weeks on some lakes), keeping them at full weight would teach unreported fraud as legitimate.
    """
    cut, begin = _us(split.test_start), _us(split.train_end)
    in_gap = (t >= begin) & (t < cut)
    if split.label_delay_days <= 0:
        return in_gap.astype(float)
    age_days = (cut - t) / 86_400_000_000
    return np.where(in_gap, np.clip(age_days / split.label_delay_days, 0.0, 1.0), 0.0)


def _times(table: pa.Table) -> np.ndarray:
    return table.column("t").to_numpy(zero_copy_only=False)


def _us(when: datetime) -> int:
    return int(when.timestamp() * 1_000_000)


def calibration_rows(
    train_mask: np.ndarray, cal_mask: np.ndarray, y: np.ndarray, seed: int
) -> tuple[np.ndarray, str | None]:
    """The calibration rows: ``cal_mask``, or a random fifth of the training rows if it holds too few frauds.

    The newest training rows are the least labelled (labels arrive days late); a sigmoid fitted on a
    handful of frauds is noise. The random fifth is drawn from the frauds and the legitimate rows apart
    (a fifth of each, rounded up), so it holds its share of the frauds however the draw falls; it shares
    accounts with the fitted rows (slightly optimistic calibration), and the returned note says so.
    """
    found = int(y[cal_mask].sum())
    if found >= MIN_CALIBRATION_POSITIVES:
        return cal_mask, None
    rng = np.random.default_rng(seed)
    chosen = np.zeros(len(train_mask), dtype=bool)
    for label in (1, 0):
        rows = np.flatnonzero(train_mask & (y == label))
        chosen[rng.choice(rows, size=-(-len(rows) // 5), replace=False)] = True
    note = (
        f"only {found} fraud in the newest fifth of training (at least {MIN_CALIBRATION_POSITIVES} needed to "
        "calibrate): calibrated on a random fifth of the training rows instead (a fifth of the frauds)"
    )
    return chosen, note


def _train_one(
    feats: pa.Table,
    y_train_all: np.ndarray,
    y_test_all: np.ndarray,
    train_mask: np.ndarray,
    test_mask: np.ndarray,
    cal_mask: np.ndarray,
    budget: int,
    days: float,
    scenarios: np.ndarray | None,
    seed: int,
    weight: np.ndarray | None = None,
) -> Trained:
    """Fit on ``train_mask`` less the calibration rows, and on the rows with a positive ``weight`` (rows whose
    labels are still arriving, weighted by their maturity); calibrate; judge on ``test_mask``."""
    X = matrix(feats)
    names = list(F.FEATURE_NAMES)
    cal_mask, note = calibration_rows(train_mask, cal_mask, y_train_all, seed)
    fit_mask = train_mask & ~cal_mask
    weights = np.ones(len(X))
    if weight is not None:
        fit_mask |= weight > 0
        weights = np.where(train_mask, 1.0, weight)
    model = fit(X[fit_mask], y_train_all[fit_mask], X[cal_mask], y_train_all[cal_mask], names, seed, weights[fit_mask])
    if note is not None:
        model.notes.insert(0, note)
    X_test, y_test = X[test_mask], y_test_all[test_mask]
    probability = model.probability(X_test)
    scores = to_score(probability)
    thresholds = thresholds_from_budget(scores, days, budget)
    ev = evaluate(
        y_test,
        probability,
        scores,
        thresholds,
        None if scenarios is None else scenarios[test_mask],
        X_test,
        names,
        days,
        budget,
    )
    return Trained(
        model,
        thresholds,
        ev,
        scores,
        y_test,
        X_test,
        int(train_mask.sum()),
        int(y_train_all[train_mask].sum()),
        ev.alerts / max(days, 1e-9),
        budget,
    )


def train(
    events: pa.Table,
    labels: pa.Table,
    split: Split,
    budget_per_day: int,
    truth: pa.Table | None = None,
    seed: int = 0,
) -> TrainingResult:
    """Train the transaction and account scores on ``events`` and ``labels`` over ``split``.

    ``truth`` (optional, synthetic data only): ``subject_pid``, ``fraud`` (bool), ``scenario`` per
    transaction and per account, to judge the test window and report recall per scenario.
    """
    label_cut = split.test_start  # the end of the gap: labels reported by then are known to training
    sig = signals.signals(events)  # the declared features' rows, made once for the three feature queries
    txn = F.transaction_features(events, labels, split.start + WARMUP, split.end, sig)
    t = _times(txn)
    train_mask = t < _us(split.train_end)
    test_mask = t >= _us(split.test_start)
    cal_from = _us(split.start + WARMUP + (split.train_end - split.start - WARMUP) * 0.8)
    cal_mask = train_mask & (t >= cal_from)
    y_known = _txn_targets(txn, labels, label_cut)
    y_eval, scenarios = _evaluation_targets(txn, labels, truth, "transaction")
    days = split.test_days
    young = maturity_weights(t, split)
    young = np.where(y_known == 1, (young > 0).astype(float), young)  # a reported fraud is sure at any age
    transaction = _train_one(
        txn, y_known, y_eval, train_mask, test_mask, cal_mask, budget_per_day, days, scenarios, seed, young
    )

    probes = [F.account_features(events, labels, at - ACTIVE, at, sig) for at in account_probes(split)]
    acct_test = F.account_features(events, labels, split.test_start, split.end, sig)
    both = pa.concat_tables([*probes, acct_test])
    n_train = both.num_rows - acct_test.num_rows
    a_train = np.arange(both.num_rows) < n_train
    a_cal = a_train & (_hash_share(both.column("qid")) < 0.2)  # a fifth of the accounts, in all their probes
    y_a_known = fraud_targets(both.append_column("subject", both.column("qid")), labels, "subject", label_cut)
    y_a_eval, a_scen = _evaluation_targets(both, labels, truth, "account")
    account = _train_one(
        both, y_a_known, y_a_eval, a_train, ~a_train, a_cal, max(1, budget_per_day // 4), 1.0, a_scen, seed
    )
    scored = (("transaction", transaction), ("account", account))
    notes = [*split.notes, *(f"{name} score: {note}" for name, t in scored for note in t.model.notes)]
    return TrainingResult(split, transaction, account, notes)


def account_probes(split: Split) -> list[datetime]:
    """The as-of times of the account score's training probes: the end of training, then every ``PROBE_EVERY``
    before it while the probe's activity window still starts after the warm-up (at least the first)."""
    times = [split.train_end]
    while times[-1] - PROBE_EVERY - ACTIVE >= split.start + WARMUP:
        times.append(times[-1] - PROBE_EVERY)
    return times


def _hash_share(values: pa.ChunkedArray) -> np.ndarray:
    """A stable pseudo-random share in [0, 1) per value (pseudonyms are hex)."""
    return np.array([int(v[:8], 16) / 2**32 if v else 0.0 for v in values.to_pylist()])


def _txn_owner(txn: pa.Table) -> pa.Table:
    """(qid, acct, t, subject = transaction pseudonym) of each transaction feature row."""
    return txn.select(["qid", "acct", "t"]).append_column("subject", txn.column("txn"))


def _txn_targets(txn: pa.Table, labels: pa.Table, until: datetime | None) -> np.ndarray:
    return fraud_targets(_txn_owner(txn), labels, "subject", until)


def _evaluation_targets(
    feats: pa.Table, labels: pa.Table, truth: pa.Table | None, kind: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """The test target (ground truth if given, else every label) and the scenario of each row."""
    rows = _txn_owner(feats) if kind == "transaction" else feats.append_column("subject", feats.column("qid"))
    if truth is None:
        return fraud_targets(rows, labels, "subject", None), None
    query = """
        SELECT coalesce(t.fraud, false) AS fraud, t.scenario
        FROM (SELECT row_number() OVER () AS i, subject FROM rows) r
        LEFT JOIN truth t ON t.subject_pid = r.subject AND t.subject_type = $kind
        ORDER BY r.i
    """
    with engine.registered(rows=rows.select(["subject"]), truth=truth) as con:
        result = con.sql(query, params={"kind": kind}).to_arrow_table()
    y = result.column("fraud").to_numpy(zero_copy_only=False).astype(int)
    return y, np.array(result.column("scenario").to_pylist(), dtype=object)
