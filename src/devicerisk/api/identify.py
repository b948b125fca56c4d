"""Lookup by a raw identifier, as an investigator gives it: an account id, a transaction id, a phone number or a
device identifier (IMEI, IDFA, OAID, MAC, Android ID, IDFV).

The value comes in the POST body (URLs get logged), is normalised and pseudonymised under every key of the
keyring, and is then forgotten: it is never logged, audited or answered. The answer holds what the serving
snapshots know of it, with references and masked values only.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Response
from pydantic import BaseModel, Field

from devicerisk.api.deps import Analyst, ServiceDep
from devicerisk.api.present import answer
from devicerisk.api.problems import Problem
from devicerisk.lookup import resolve

router = APIRouter(prefix="/v1/lookup", tags=["lookup"])
#: The kinds accepted: the serving layer's (account, transaction, phone, device ids).
#: An identifier is printable text: no control character (a NUL, a line break) reaches normalisation.
PRINTABLE = r"^[^\x00-\x1f\x7f]+$"
Kind = Literal["account", "transaction", "phone", "imei", "android_id", "idfv", "mac", "oaid", "idfa"]


class Identifier(BaseModel):
    kind: Kind
    value: Annotated[
        str, Field(min_length=1, max_length=128, pattern=PRINTABLE, description="The raw identifier (never logged).")
    ]

    def __repr__(self) -> str:  # never print the value
        return f"Identifier({self.kind})"

    __str__ = __repr__


@router.post("", summary="Risk by a raw identifier given in the body: the accounts, transactions or devices it names")
async def lookup(service: ServiceDep, caller: Analyst, body: Identifier) -> Response:
    view = await service.aview()  # then all in memory: the event loop serves it, no thread hop
    try:
        found = resolve.find(view, resolve.candidates(body.kind, body.value, service.keyring))
    except resolve.MalformedIdentifierError as err:
        await service.arecord(caller, f"api.lookup_{body.kind}", {"found": 0, "malformed": 1})
        raise Problem(422, str(err)) from None
    shown = {
        "kind": body.kind,
        "accounts": [view.account(p) for p in found.get("accounts", [])],
        "transactions": [view.transaction(p) for p in found.get("transactions", [])],
        "devices": [view.device(k) for k in found.get("devices", [])],
    }
    counts = {name: len(shown[name]) for name in ("accounts", "transactions", "devices")}
    await service.arecord(caller, f"api.lookup_{body.kind}", counts)
    if not any(counts.values()):
        raise Problem(404, f"the serving snapshots know nothing by this {body.kind} identifier")
    return answer(view, shown)
