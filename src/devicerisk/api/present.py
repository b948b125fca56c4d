"""Desensitised answers (5.2.2(2)): pseudonyms become the serving view's references, other identifiers are masked.

The serving view answers with pseudonyms; nothing leaves the service with one. A pseudonym of a kind the service
resolves (account, transaction, device) is shown as that kind's reference (``account_ref`` ...), which a later
request can name; any other pseudonym (a phone's, an IP's) is dropped. Times are ISO 8601 strings.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Protocol

import orjson
from fastapi import Response

#: Pseudonym fields -> (kind of reference, the field it is shown as).
REFERENCES = {
    "account_id_pid": ("account", "account_ref"),
    "transaction_id_pid": ("transaction", "transaction_ref"),
    "device_key": ("device", "device_ref"),
}


class Refs(Protocol):
    def ref(self, kind: str, pid: str) -> str: ...


#: Values shown as they are (checked by exact type first: most of an answer is made of them).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def present(view: Refs, value: Any, made: dict[tuple[str, str], str] | None = None) -> Any:
    """``value`` (the serving view's answer) with every pseudonym replaced by a reference or dropped. ``made``
    keeps the references made for this answer (an account's own reference recurs in each of its transactions)."""
    if type(value) in _PLAIN:
        return value
    made = {} if made is None else made
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for name, item in value.items():
            if name in REFERENCES:
                kind, shown = REFERENCES[name]
                if item is not None and (kind, item) not in made:
                    made[kind, item] = view.ref(kind, item)
                out[shown] = None if item is None else made[kind, item]
            elif not name.endswith("_pid"):
                out[name] = item if type(item) in _PLAIN else present(view, item, made)
        return out
    if isinstance(value, list | tuple):
        return [item if type(item) in _PLAIN else present(view, item, made) for item in value]
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


def answer(view: Refs, value: Any, status: int = 200) -> Response:
    """``value`` presented and serialised in one step (orjson): lookups skip FastAPI's generic encoder, which
    costs more than the lookup itself."""
    return Response(orjson.dumps(present(view, value)), status_code=status, media_type="application/json")
