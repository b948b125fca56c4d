"""Feedback labels: confirmed fraud or legitimate, landed as a label file that label ingest picks up.

A label names its transaction or account by the raw id, as the contract's label table does (``LABEL_FIELDS``):
label ingest pseudonymises it in the subject's domain, so the label joins the events it is about. The id comes
in the body, never the URL; it is checked against the contract here (a bad label is a 422, not a quarantined
line) and must name a subject the serving snapshots know (an unknown id is a 404: a typo, most likely). It is
written to the landing zone only, and answered masked; the audit record holds counts.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter
from pydantic import AwareDatetime, BaseModel, Field

from devicerisk.api.deps import Analyst, ServiceDep
from devicerisk.api.identify import PRINTABLE
from devicerisk.api.problems import Problem
from devicerisk.contract.fields import LABEL_FIELDS, LABEL_SUBJECT_DOMAINS
from devicerisk.contract.times import TimeWindow
from devicerisk.ingest.validate import fields_reason
from devicerisk.privacy.masking import mask
from devicerisk.store import landing

router = APIRouter(prefix="/v1/labels", tags=["labels"])


class Label(BaseModel):
    subject_type: Literal["transaction", "account"]
    subject_id: Annotated[
        str,
        Field(min_length=1, max_length=128, pattern=PRINTABLE, description="The raw transaction or account id."),
    ]
    label: Literal["fraud", "legitimate"]
    fraud_type: Annotated[str | None, Field(max_length=64, pattern=r"^[a-z_]{1,64}$")] = None
    fraud_from: Annotated[
        AwareDatetime | None, Field(description="Account labels: when it came into fraudulent hands.")
    ] = None


@router.post("", status_code=202, summary="Land a feedback label for label ingest")
def add_label(service: ServiceDep, caller: Analyst, body: Label) -> dict[str, Any]:
    view, domain = service.view(), LABEL_SUBJECT_DOMAINS[body.subject_type]
    pids = {p.pseudonymise_one(domain, body.subject_id) for p in service.keyring}
    if not any(p is not None and getattr(view, body.subject_type)(p) is not None for p in pids):
        service.record(caller, "api.label", {"labels": 0, "unknown": 1})
        raise Problem(404, f"the serving snapshots know no {body.subject_type} by this id: check it")
    now = datetime.now(UTC)
    label_id = f"api-{now:%Y%m%dT%H%M%S}-{secrets.token_hex(6)}"
    record: dict[str, Any] = {
        "label_id": label_id,
        "subject_type": body.subject_type,
        "subject_id": body.subject_id,
        "label": body.label,
        "reported_at": now.isoformat(),
    }
    if body.fraud_type is not None:
        record["fraud_type"] = body.fraud_type
    if body.fraud_from is not None:
        record["fraud_from"] = body.fraud_from.isoformat()
    skew = timedelta(hours=service.settings.max_future_skew_hours)
    if (reason := fields_reason(record, LABEL_FIELDS, "label", TimeWindow.at(now, skew))) is not None:
        raise Problem(422, f"the label breaks the contract: {reason}")
    landing.write_label_file(service.settings.landing_dir, [orjson.dumps(record)], label_id)
    service.record(caller, "api.label", {"labels": 1, "fraud": int(body.label == "fraud")})
    return {
        "label_id": label_id,
        "subject_type": body.subject_type,
        "subject": mask(body.subject_id),
        "status": "landed",
    }
