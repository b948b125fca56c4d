"""Identity verification before a data-subject request (6.4.2): who the requester is, checked before anything runs.

A request goes past ``verified`` only with a verification record: the method, who verified and when. A person
(the privacy officer) records a check they made (in person, documents, a call back). A check made by the
platform's own authentication is accepted only as a token signed with a key shared with the platform:
the pipeline checks the token, and never sees a password.

The token (made by :func:`make_token`; any language can make one) is ``PAYLOAD.MAC``:

- ``PAYLOAD`` is the base64url (no padding) of a JSON object ``{"iss": who authenticated the subject, "sub":
  the account id as the platform knows it, "kind": the request kind, "iat": issued at, "exp": expires at}``
  (times in Unix seconds);
- ``MAC`` is the base64url (no padding) of HMAC-SHA256 under the verification key over the ASCII bytes
  of ``PAYLOAD``.

The MAC is checked (in constant time) before the payload is read. The account in the token is
pseudonymised as the request's identifiers are, and compared as pseudonyms; neither the token nor the
raw account id is stored or logged. A token proves control of one account only, so it verifies a request
that names that account and nothing else (a phone number or a device may be someone else's too).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any

from devicerisk.governance.subjects import Identifiers, MalformedIdentifierError, pseudonymise_identifiers
from devicerisk.privacy.keys import Key, MissingKeyError
from devicerisk.privacy.pseudonymise import Pseudonymiser

#: The longest a token may live (``exp - iat``): a token is made when the subject asks, and checked at once.
MAX_TOKEN_LIFETIME = timedelta(hours=24)
#: How far a token's issue time may be ahead of this machine's clock.
CLOCK_SKEW = timedelta(minutes=5)
_MAX_NAME = 64
_B64URL = re.compile(r"[A-Za-z0-9_-]+")


class Method(StrEnum):
    """How the requester's identity was verified."""

    PLATFORM_TOKEN = "platform_token"  # the platform's own authentication, as a signed token
    IN_PERSON = "in_person"  # an identity document seen in person
    DOCUMENTS = "documents"  # copies of documents, checked against the account
    CALLBACK = "callback"  # a call back to the phone number registered with the account


class Unverified(ValueError):
    """The requester's identity is not verified. ``code`` is a short name for the audit trail; the message is
    one line for people, with no identifier and no token in it."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


@dataclass(frozen=True, slots=True)
class Claim:
    """How the caller says the requester was verified: a person's check (method and name), or a platform token."""

    method: Method
    verified_by: str = ""
    token: str | None = field(default=None, repr=False)  # never printed


def manual(method: Method | str, verified_by: str) -> Claim:
    """A check a person made (``verified_by``: their name), by a method other than a platform token."""
    return Claim(Method(method), verified_by)


def platform(token: str) -> Claim:
    """A check the platform's authentication made, as its signed token."""
    return Claim(Method.PLATFORM_TOKEN, token=token)


@dataclass(frozen=True, slots=True)
class Record:
    """What is stored with the request: the method, who verified and when (for a token, its expiry and key id)."""

    method: Method
    verified_by: str
    verified_at: datetime
    token_expires_at: datetime | None = None
    key_id: str | None = None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "method": str(self.method),
            "verified_by": self.verified_by,
            "verified_at": self.verified_at.isoformat(),
        }
        if self.token_expires_at is not None:
            out |= {"token_expires_at": self.token_expires_at.isoformat(), "key_id": self.key_id}
        return out


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    if not _B64URL.fullmatch(text):  # the decoder itself skips stray characters
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(key: Key, payload: str) -> bytes:
    return hmac.new(key.material, payload.encode("ascii"), hashlib.sha256).digest()


def make_token(
    key: Key,
    account_id: str,
    kind: str,
    issued_at: datetime,
    lifetime: timedelta = timedelta(minutes=30),
    issuer: str = "platform-auth",
) -> str:
    """A token saying that ``issuer`` authenticated the holder of ``account_id`` for a ``kind`` request: what the
    platform makes when a signed-in user asks (and what tests make)."""
    claims = {
        "iss": issuer,
        "sub": account_id,
        "kind": str(kind),
        "iat": int(issued_at.timestamp()),
        "exp": int((issued_at + lifetime).timestamp()),
    }
    payload = _b64(json.dumps(claims, separators=(",", ":"), sort_keys=True).encode())
    return f"{payload}.{_b64(_mac(key, payload))}"


def _read_token(key: Key, token: str, now: datetime) -> dict[str, Any]:
    """The token's claims once its MAC, fields and times are checked; :class:`Unverified` otherwise."""
    payload, _, mac = token.strip().partition(".")
    try:
        given = _unb64(mac)
        _unb64(payload)
    except (ValueError, binascii.Error):
        raise Unverified("malformed_token", "the verification token is malformed (expected PAYLOAD.MAC)") from None
    if not hmac.compare_digest(given, _mac(key, payload)):
        raise Unverified("forged_token", "the verification token's signature does not match: forged or altered")
    try:
        claims = json.loads(_unb64(payload))
    except (ValueError, binascii.Error):
        claims = None
    names = {"iss": str, "sub": str, "kind": str, "iat": int, "exp": int}
    malformed = Unverified("malformed_token", f"the verification token's payload must hold {', '.join(names)}")
    if not isinstance(claims, dict) or not all(isinstance(claims.get(n), t) for n, t in names.items()):
        raise malformed
    try:
        issued, expires = (datetime.fromtimestamp(claims[n], UTC) for n in ("iat", "exp"))
    except (OverflowError, OSError, ValueError):  # a time no calendar holds
        raise malformed from None
    if expires <= now:
        raise Unverified("expired_token", f"the verification token expired at {expires:%Y-%m-%d %H:%M} UTC")
    if issued > now + CLOCK_SKEW or expires - issued > MAX_TOKEN_LIFETIME:
        raise Unverified(
            "token_times",
            f"the verification token is issued in the future or lives longer than {MAX_TOKEN_LIFETIME}",
        )
    return claims


def _check_token(
    claim: Claim, kind: str, ids: Identifiers, keyring: Iterable[Pseudonymiser], key: Key | None, now: datetime
) -> Record:
    if key is None:
        raise MissingKeyError(
            "no verification key: set DEVICERISK_VERIFICATION_KEY or DEVICERISK_VERIFICATION_KEY_FILE to check "
            "platform tokens"
        )
    claims = _read_token(key, claim.token or "", now)
    if claims["kind"] != kind:
        raise Unverified("other_kind", f"the verification token is for a {claims['kind']} request, not {kind}")
    if ids.account_id is None or ids.phone is not None or ids.devices:
        raise Unverified(
            "token_account_only",
            "a platform token verifies the account it names and nothing else: name only that account, or verify "
            "in person or by documents",
        )
    keys = list(keyring)
    try:
        theirs = pseudonymise_identifiers(Identifiers(account_id=claims["sub"]), keys).accounts
    except MalformedIdentifierError:
        raise Unverified("malformed_token", "the verification token's account id is malformed") from None
    if theirs != pseudonymise_identifiers(ids, keys).accounts:
        raise Unverified("other_subject", "the verification token is for another account")
    expires = datetime.fromtimestamp(claims["exp"], UTC)
    return Record(Method.PLATFORM_TOKEN, _name(claims["iss"]), now, expires, key.key_id)


def _name(text: str) -> str:
    """A verifier's name: short, one line."""
    name = " ".join(text.split())
    if not name or len(name) > _MAX_NAME:
        raise Unverified("no_verifier", f"who verified must be named (1 to {_MAX_NAME} characters)")
    return name


def check(
    claim: Claim | None,
    kind: str,
    ids: Identifiers,
    keyring: Iterable[Pseudonymiser],
    key: Key | None,
    now: datetime,
) -> Record:
    """The verification record of a ``kind`` request about ``ids``; :class:`Unverified` (with the reason) when
    there is none, or the token is forged, expired or for another subject or kind. :class:`MissingKeyError` when
    a token is given and no verification key is configured (nothing is decided)."""
    if claim is None:
        raise Unverified(
            "unverified",
            "the requester's identity is not verified (6.4.2): give the platform's token, or who verified them and how",
        )
    if claim.method is Method.PLATFORM_TOKEN:
        return _check_token(claim, kind, ids, keyring, key, now)
    if claim.token is not None:
        raise Unverified("malformed_token", "a token is given only with the platform_token method")
    return Record(claim.method, _name(claim.verified_by), now)
