"""The model card of a training run: Markdown plus PNG plots (matplotlib, Agg), as bytes for the registry.

It holds metrics and plots only: no identifier, raw or pseudonymised, appears in a card.
"""

from __future__ import annotations

import io
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: plots are rendered to PNG bytes
import matplotlib.pyplot as plt
import numpy as np

from devicerisk.risk.evaluate import TARGETS, Evaluation, ranking_metrics
from devicerisk.risk.training import Split, Trained, TrainingResult


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _png(fig: Any) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return buf.getvalue()


def reliability_png(name: str, ev: Evaluation) -> bytes:
    fig, ax = plt.subplots(figsize=(4.5, 4))
    ax.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfect calibration")
    if ev.reliability:
        predicted, observed = zip(*ev.reliability, strict=True)
        ax.plot(predicted, observed, marker="o", label=name)
    ax.set_xlabel("predicted fraud probability")
    ax.set_ylabel("observed fraud rate")
    ax.set_title(f"{name}: reliability (Brier {_fmt(ev.brier)})")
    ax.legend(loc="upper left")
    return _png(fig)


def distribution_png(name: str, trained: Trained) -> bytes:
    fig, ax = plt.subplots(figsize=(5.5, 3.5))
    bins = np.linspace(0, 100, 41)
    for value, label in ((0, "legitimate"), (1, "fraud")):
        scores = trained.test_scores[trained.test_target == value]
        if len(scores):
            ax.hist(scores, bins=bins, alpha=0.6, label=f"{label} ({len(scores):,})", log=True)
    for level, threshold in (("elevated", trained.thresholds.elevated), ("highest", trained.thresholds.highest)):
        ax.axvline(threshold, color="black", linestyle=":", linewidth=1)
        ax.text(threshold, ax.get_ylim()[1], f" {level}", va="top", fontsize=8)
    ax.set_xlabel("score (0–100)")
    ax.set_ylabel("rows (log)")
    ax.set_title(f"{name}: held-out score distribution")
    if len(trained.test_scores):  # no held-out rows: no histogram to name
        ax.legend()
    return _png(fig)


def _score_section(name: str, trained: Trained, budget: str) -> list[str]:
    ev = trained.evaluation
    model = trained.model
    lines = [f"## {name.capitalize()} risk", ""]
    if model.kind != "supervised":
        lines += [f"**Unsupervised fallback (IsolationForest).** {'; '.join(model.notes)}.", ""]
    lines += [
        f"Model: {model.kind}; trained on {trained.train_rows:,} rows with {trained.train_positives:,} fraud "
        f"targets; held out {ev.rows:,} rows with {ev.positives:,} fraud.",
        "",
        "| metric | value | target |",
        "|---|---|---|",
        f"| ROC AUC | {_fmt(ev.roc_auc, 4)} | {TARGETS['roc_auc'] if name == 'transaction' else ''} |",
        f"| average precision | {_fmt(ev.average_precision, 4)} | "
        f"{TARGETS['average_precision'] if name == 'transaction' else ''} |",
        f"| precision at the alert budget ({budget}; {ev.alerts:,} alerts) | {_fmt(ev.precision_at_budget)} | "
        f"{TARGETS['precision_at_budget'] if name == 'transaction' else ''} |",
        f"| Brier score | {_fmt(ev.brier, 4)} | |",
        "",
        f"Thresholds: elevated ≥ {trained.thresholds.elevated:.4f}, highest ≥ {trained.thresholds.highest:.4f} "
        "(a score exactly on a threshold takes the higher level).",
        "",
        f"![reliability]({name}_reliability.png) ![scores]({name}_scores.png)",
        "",
    ]
    if ev.recall_by_scenario:
        lines += [
            "Recall per planted scenario (share of its fraud rows at elevated or highest):",
            "",
            "| scenario | recall |",
            "|---|---|",
        ]
        lines += [f"| {k} | {v:.3f} |" for k, v in ev.recall_by_scenario.items()] + [""]
    lines += _unreported_section(trained)
    if ev.single_flags:
        lines += _single_feature_section(ev.single_flags)
    return lines


def unreported_rows(trained: Trained) -> np.ndarray:
    """Held-out rows whose account and device had no fraud report before t (not already-known fraud)."""
    names = trained.model.features
    X = trained.test_X
    known = np.zeros(len(X), dtype=bool)
    for name in ("account_fraud_reports", "device_fraud_reports"):
        if name in names:
            known |= np.nan_to_num(X[:, names.index(name)], nan=0.0) > 0
    return ~known


def _unreported_section(trained: Trained) -> list[str]:
    rows = unreported_rows(trained)
    auc, ap = ranking_metrics(trained.test_target[rows], trained.test_scores[rows])
    return [
        f"On the {int(rows.sum()):,} held-out rows whose account and device had no fraud report before t "
        f"({int(trained.test_target[rows].sum()):,} fraud), the fraud not yet known: ROC AUC {_fmt(auc, 4)}, "
        f"average precision {_fmt(ap, 4)}.",
        "",
    ]


#: The single-feature metrics the card checks, with their names in the card.
_SINGLE_METRICS = {
    "roc_auc": "ROC AUC",
    "average_precision": "average precision",
    "precision_at_budget": "precision at the alert budget",
}


def _single_feature_section(single: dict[str, dict[str, float]]) -> list[str]:
    """Each feature alone as the score: which reach a target on their own, and the best one per metric."""
    metrics = [m for m in _SINGLE_METRICS if all(m in v for v in single.values())]
    reaching = sorted(k for k, v in single.items() if any(v[m] >= TARGETS[m] for m in metrics))
    targets = " or ".join(_SINGLE_METRICS[m] for m in metrics)
    head = (
        f"Single features used alone as the score (each in its riskier direction; the best eight by average "
        f"precision): none reaches the {targets} target on its own."
        if not reaching
        else "Single features used alone as the score (each in its riskier direction; the best eight by average "
        f"precision); reaching the {targets} target on their own: {', '.join(reaching)}."
    )
    best = []
    for m in metrics:
        name, values = max(single.items(), key=lambda kv: (kv[1][m], kv[0]))
        best.append(f"{_SINGLE_METRICS[m]} {name} ({values[m]:.3f}, target {TARGETS[m]})")
    top = sorted(single.items(), key=lambda kv: (-kv[1]["average_precision"], -kv[1]["roc_auc"]))[:8]
    header = "| feature | " + " | ".join(_SINGLE_METRICS[m] for m in metrics) + " |"
    lines = [head, "", f"Best single feature by {'; by '.join(best)}.", "", header, "|---" * (len(metrics) + 1) + "|"]
    for k, v in top:
        low = " (low values risky)" if v.get("direction", 1.0) < 0 else ""
        lines.append(f"| {k}{low} | " + " | ".join(f"{v[m]:.3f}" for m in metrics) + " |")
    return [*lines, ""]


def _days(a: Any, b: Any) -> str:
    return f"{(b - a).total_seconds() / 86_400:.1f} d"


def _split_table(split: Split, metadata: dict[str, Any]) -> list[str]:
    """The time split as a table: train, the label-delay gap, test, and the wait for the test's labels."""
    delay = metadata.get("label_delay", {}).get("text", f"label delay {split.label_delay_days:.1f} days")
    rows = [
        ("training (labels reported by the end of the gap)", split.start, split.train_end),
        (f"gap for label delay ({delay})", split.train_end, split.test_start),
        ("held-out test", split.test_start, split.end),
    ]
    if split.newest is not None and split.newest > split.end:
        rows.append(("wait for the test window's labels (not used)", split.end, split.newest))
    lines = ["| part | from (UTC) | to (UTC) | length |", "|---|---|---|---|"]
    lines += [f"| {name} | {a:%Y-%m-%d %H:%M} | {b:%Y-%m-%d %H:%M} | {_days(a, b)} |" for name, a, b in rows]
    lines += [
        "",
        "The transaction score also trains on the gap's transactions: reported fraud at full weight, the "
        "rest as legitimate weighted by their age at the end of the gap over the label delay (their fraud "
        "may not be reported yet). Calibration and the test use neither.",
    ]
    return [*lines, ""]


def render(result: TrainingResult, metadata: dict[str, Any]) -> dict[str, bytes]:
    """The card's files: ``card.md`` and its PNG plots."""
    split = result.split
    budget = f"top {metadata['budget_per_day']} a day"
    lines = [
        f"# Model card: {metadata['version']}",
        "",
        *_split_table(split, metadata),
        f"Lake snapshot: events v{metadata['events_version']}, labels v{metadata['labels_version']}. "
        f"Test judged against {metadata['judged_against']}.",
        "",
        *(f"> {note}" for note in result.notes),
        "",
    ]
    files: dict[str, bytes] = {}
    for name in ("transaction", "account"):
        trained: Trained = getattr(result, name)
        lines += _score_section(name, trained, budget if name == "transaction" else "top few a day")
        files[f"{name}_reliability.png"] = reliability_png(name, trained.evaluation)
        files[f"{name}_scores.png"] = distribution_png(name, trained)
    lines += ["## Libraries", "", *(f"- {k} {v}" for k, v in metadata["libraries"].items()), ""]
    files["card.md"] = "\n".join(lines).encode()
    return files
