"""``devicerisk risk``: train, score and inspect the risk models. Identifiers are always shown masked."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from devicerisk.cli_runtime import DataDir, prepare_prefect
from devicerisk.config import Settings

risk_app = typer.Typer(help="Risk scores: train, score, top accounts, model cards.", no_args_is_help=True)
console = Console()


@risk_app.command("train")
def train(data_dir: DataDir = None) -> None:
    """Train both models (a Prefect flow run) and print the promotion decision."""
    prepare_prefect()
    from devicerisk.flows.train import train_flow

    outcome = train_flow(str(Settings.at(data_dir).data_dir))
    if outcome is None:
        console.print("nothing trained: the lake is too short yet (the run's warning above says why)")
        raise typer.Exit(1)
    meta = outcome.metadata["transaction"]
    console.print(f"model {outcome.version} ({meta['kind']}): {outcome.reason}")
    for note in outcome.metadata["notes"]:
        console.print(f"[yellow]{note}[/yellow]")
    m = meta["metrics"]
    console.print(
        f"held-out transactions: ROC AUC {m['roc_auc']}, AP {m['average_precision']}, "
        f"precision at budget {m['precision_at_budget']}"
    )


@risk_app.command("score")
def score(data_dir: DataDir = None) -> None:
    """Score new transactions and all recently active accounts with the champion."""
    prepare_prefect()
    from devicerisk.flows.score import score_accounts_flow, score_transactions_flow

    settings = Settings.at(data_dir)
    where = str(settings.data_dir)
    transactions, accounts = score_transactions_flow(where), score_accounts_flow(where)
    print_score_summary(settings, transactions, accounts)


def print_score_summary(settings: Settings, transactions: dict[str, int], accounts: dict[str, int]) -> None:
    """What this run scored, beside what the lake holds: counts a reader can check against the tables."""
    from devicerisk.store import scores

    in_lake = (
        scores.level_counts(settings.lake_dir, scores.TRANSACTION_SCORES),
        scores.level_counts(settings.lake_dir, scores.ACCOUNT_SCORES, latest_only="as_of"),
    )
    table = Table(title="risk scores", caption="lake: transaction_scores, all rows; account_scores, the newest as-of")
    for column in ("score", "this run", "this run: highest", "lake", "lake: highest", "lake: elevated", "lake: normal"):
        table.add_column(column, justify="left" if column == "score" else "right", no_wrap=column == "score")
    runs = (
        (transactions.get("transactions_scored", 0), transactions.get("highest", 0)),
        (accounts.get("accounts_scored", 0), accounts.get("highest", 0)),
    )
    for name, (scored, highest), levels in zip(("transactions", "accounts"), runs, in_lake, strict=True):
        table.add_row(
            name,
            f"{scored:,}",
            f"{highest:,}",
            f"{sum(levels.values()):,}",
            *(f"{levels.get(level, 0):,}" for level in ("highest", "elevated", "normal")),
        )
    console.print(table)


def print_top_accounts(settings: Settings, n: int = 10, actor: str = "fraud-team") -> None:
    """The riskiest accounts of the serving snapshot with their reasons, pseudonyms masked; the lookup is audited."""
    from devicerisk.governance.stores import audit_trail
    from devicerisk.risk.publish import masked_top_accounts
    from devicerisk.store import audit

    trail = audit_trail(settings)
    rows = masked_top_accounts(settings.serving_dir, n)
    audit.append(
        trail,
        actor=actor,
        role="fraud_analyst",
        action="lookup_top_accounts",
        purpose="risk_control",
        counts={"accounts_shown": len(rows)},
    )
    if not rows:
        console.print("no account scores yet: run `devicerisk risk score`")
        return
    table = Table(title=f"top-risk accounts (model {rows[0]['model_version']}, {rows[0]['model_kind']})")
    for column in ("account", "score", "level", "reasons"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["account_id_pid"], f"{r['score']:.2f}", r["level"], "; ".join(r["reasons"]) or "-")
    console.print(table)


@risk_app.command("top")
def top(
    data_dir: DataDir = None,
    n: Annotated[int, typer.Option(min=1)] = 10,
    actor: Annotated[
        str, typer.Option(help="Who looks the scores up (a short name, for the audit trail).")
    ] = "fraud-team",
) -> None:
    """The riskiest accounts with their reasons (identifiers masked); each lookup leaves an audit record."""
    print_top_accounts(Settings.at(data_dir), n, actor)


@risk_app.command("card")
def card(
    data_dir: DataDir = None, version: Annotated[str | None, typer.Option(help="Default: champion.")] = None
) -> None:
    """Print a model's card (Markdown)."""
    from devicerisk.store import registry

    settings = Settings.at(data_dir)
    chosen = version or registry.champion(settings.models_dir)
    if chosen is None:
        console.print("no model has been trained yet")
        raise typer.Exit(1)
    try:
        console.print(registry.read_file(settings.models_dir, chosen, "card.md").decode())
    except registry.UnknownModelVersion as err:
        console.print(f"[red]{err}[/red]")
        raise typer.Exit(1) from err
