"""What the risk flows publish for an operator, readable in any Prefect UI: the model card with its plots
inlined, and the riskiest accounts with their pseudonyms masked. Neither holds a raw identifier; a card holds
no identifier at all."""

from __future__ import annotations

import base64
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from devicerisk.privacy.masking import mask
from devicerisk.risk.service import top_accounts

_IMAGE = re.compile(r"\]\(([\w.-]+\.png)\)")


def card_markdown(files: Mapping[str, bytes]) -> str:
    """The card's Markdown with each plot it shows inlined as a ``data:`` URI, so no file path is needed."""

    def inline(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in files:
            return match.group(0)
        return f"](data:image/png;base64,{base64.b64encode(files[name]).decode()})"

    return _IMAGE.sub(inline, files["card.md"].decode())


def masked_top_accounts(serving_dir: Path, n: int = 10) -> list[dict[str, Any]]:
    """The ``n`` riskiest accounts of the serving snapshot, pseudonyms masked for display."""
    return [{**r, "account_id_pid": mask(r["account_id_pid"])} for r in top_accounts(serving_dir, n)]


def top_accounts_markdown(rows: list[dict[str, Any]]) -> str:
    """Masked top accounts (from :func:`masked_top_accounts`) as a Markdown table."""
    if not rows:
        return "No account scores yet.\n"
    head = f"Model {rows[0]['model_version']} ({rows[0]['model_kind']}); accounts masked.\n\n"
    lines = ["| account | score | level | reasons |", "|---|---:|---|---|"]
    for r in rows:
        why = "; ".join(r["reasons"]) or "-"
        lines.append(f"| {r['account_id_pid']} | {r['score']:.2f} | {r['level']} | {why} |")
    return head + "\n".join(lines) + "\n"
