"""Ground truth of synthetic data, pseudonymised like the lake so it joins the scores."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.privacy.pseudonymise import Pseudonymiser
from devicerisk.risk.labels import SUBJECT_DOMAINS
from devicerisk.store.landing import read_truth


def pseudonymised_truth(landing_dir: Path, pseudonymiser: Pseudonymiser) -> pa.Table | None:
    """(subject_type, subject_pid, fraud, scenario); raw ids never leave this function."""
    raw = read_truth(landing_dir)
    if raw is None:
        return None
    pids = pa.nulls(raw.num_rows, pa.string())
    for kind, domain in SUBJECT_DOMAINS.items():
        mask = pc.equal(raw.column("subject_type"), kind)
        pids = pc.if_else(mask, pseudonymiser.pseudonymise(domain, raw.column("subject_id")), pids)
    return pa.table(
        {
            "subject_type": raw.column("subject_type"),
            "subject_pid": pids,
            "fraud": raw.column("fraud"),
            "scenario": raw.column("scenario"),
        }
    )
