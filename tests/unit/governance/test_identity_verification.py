"""Identity verification before a data-subject request (6.4.2): a request goes past ``verified`` only with a record
of how the requester was verified; a platform check counts only as a token signed with the shared key.

Each runs on the retention world (every store holds the subject); a rejected request must have changed no store,
be recorded as rejected with its reason, and be audited without the identifier or the token.
"""

from __future__ import annotations

import base64
import dataclasses
import json
import secrets
from datetime import datetime, timedelta

import pyarrow.dataset as ds
import pytest

import retention_world as world
from devicerisk.config import Settings
from devicerisk.governance import audit_check, requests, verification
from devicerisk.governance.requests import RequestKind, Status
from devicerisk.governance.stores import Stores, stores_for
from devicerisk.governance.subjects import Identifiers
from devicerisk.governance.verification import Method, make_token
from devicerisk.privacy.keys import Key, MissingKeyError
from devicerisk.privacy.leakscan import scan_files
from devicerisk.store import audit, governance
from devicerisk.store import lake_maintenance as lakes
from devicerisk.store.governance import RequestRow

ACCOUNT = world.SUBJECT.account_id or ""
ACCOUNT_ONLY = Identifiers(account_id=ACCOUNT)


@pytest.fixture
def setup(settings: Settings) -> tuple[world.World, Stores]:
    s = settings.model_copy(update={"vacuum_grace_hours": 0})
    return world.build(s), stores_for(s)


def _key(stores: Stores) -> Key:
    assert stores.verification_key is not None
    return stores.verification_key


def _events(stores: Stores, account_pid: str) -> int:
    return lakes.count_where(stores.lake_dir, "events", ds.field("account_id_pid") == account_pid)


def _requests_audited(stores: Stores) -> bool:
    """Whether the audit log covers every request the warehouse records as finished or rejected (``audit verify``)."""
    activity = audit_check.recorded_activity(stores.warehouse_path)
    requested = {action: at for action, at in activity.items() if action.startswith("request.")}
    return bool(requested) and audit.missing_activity(stores.audit_dir, requested) == []


def _rejected(
    stores: Stores, w: world.World, claim: verification.Claim | None, code: str, message: str, kind: RequestKind
) -> RequestRow:
    """Submit a request that must be rejected: refused with ``message``, recorded as rejected with no subject and
    audited with ``code``, no store changed, and neither the raw account id nor the token written anywhere."""
    before = _events(stores, w.subject_pid)
    with pytest.raises(requests.VerificationError, match=message) as err:
        requests.submit(stores, kind, ACCOUNT_ONLY, world.NOW, verification=claim)
    assert "\n" not in str(err.value)  # one line
    (row,) = governance.requests(stores.warehouse_path)
    assert row.status == Status.REJECTED and row.reason and message in row.reason and row.request_id in str(err.value)
    assert row.subject == {} and row.found is None and row.verification is None  # nobody was verified
    last = audit.records(stores.audit_dir)[-1]
    assert (last["action"], last["purpose"], last["counts"]) == (
        f"request.{kind}.rejected",
        "identity_verification",
        {code: 1},
    )
    assert _requests_audited(stores)
    assert _events(stores, w.subject_pid) == before  # nothing deleted
    assert not stores.requests_dir.exists() or not any(stores.requests_dir.iterdir())  # nothing exported
    needles = {ACCOUNT: "the raw account id"} | ({claim.token: "the token"} if claim and claim.token else {})
    files = [stores.warehouse_path, stores.audit_dir / audit.LOG_NAME]
    assert scan_files(files, needles).findings == []
    return row


def test_clause_6_4_2_a_request_without_verification_is_rejected_and_audited(
    setup: tuple[world.World, Stores],
) -> None:
    w, stores = setup
    _rejected(stores, w, None, "unverified", "identity is not verified", RequestKind.ERASURE)


def _altered_payload(token: str, **changes: object) -> str:
    """``token`` with its payload changed and its MAC kept: what someone without the key can make."""
    payload, mac = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps(claims | changes).encode()).rstrip(b"=").decode()
    return f"{forged}.{mac}"


@pytest.mark.parametrize("forgery", ["another key", "altered account", "altered expiry", "altered mac", "no mac"])
def test_clause_6_4_2_a_forged_token_is_rejected_and_audited(setup: tuple[world.World, Stores], forgery: str) -> None:
    w, stores = setup
    key = _key(stores)
    other_key = Key.from_bytes(secrets.token_bytes(32), "verification")
    token = make_token(key, world.NEIGHBOUR, "erasure", world.NOW)
    expired = make_token(key, ACCOUNT, "erasure", world.NOW - timedelta(days=2))
    payload, mac = token.split(".")
    forged = {
        "another key": make_token(other_key, ACCOUNT, "erasure", world.NOW),
        "altered account": _altered_payload(token, sub=ACCOUNT),  # the neighbour's token made out to the subject
        "altered expiry": _altered_payload(expired, exp=int((world.NOW + timedelta(hours=1)).timestamp())),
        "altered mac": f"{payload}.{'B' if mac[0] == 'A' else 'A'}{mac[1:]}",
        "no mac": payload,
    }[forgery]
    code, message = ("malformed_token", "malformed") if forgery == "no mac" else ("forged_token", "forged")
    _rejected(stores, w, verification.platform(forged), code, message, RequestKind.ERASURE)


def test_clause_6_4_2_an_expired_token_is_rejected_and_audited(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    token = make_token(_key(stores), ACCOUNT, "erasure", world.NOW - timedelta(hours=1), timedelta(minutes=30))
    _rejected(stores, w, verification.platform(token), "expired_token", "expired", RequestKind.ERASURE)


def test_clause_6_4_2_a_token_for_another_subject_is_rejected_and_audited(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    token = make_token(_key(stores), world.NEIGHBOUR, "erasure", world.NOW)  # validly signed, for someone else
    _rejected(stores, w, verification.platform(token), "other_subject", "another account", RequestKind.ERASURE)


def test_clause_6_4_2_a_token_for_another_kind_of_request_is_rejected_and_audited(
    setup: tuple[world.World, Stores],
) -> None:
    w, stores = setup
    token = make_token(_key(stores), ACCOUNT, "access", world.NOW)  # the subject asked to see, not to erase
    _rejected(stores, w, verification.platform(token), "other_kind", "access request, not erasure", RequestKind.ERASURE)


@pytest.mark.parametrize(
    ("issued", "lifetime"),
    [(timedelta(hours=1), timedelta(minutes=30)), (timedelta(0), verification.MAX_TOKEN_LIFETIME * 2)],
    ids=["issued in the future", "lives too long"],
)
def test_clause_6_4_2_a_token_with_incredible_times_is_rejected(
    setup: tuple[world.World, Stores], issued: timedelta, lifetime: timedelta
) -> None:
    w, stores = setup
    token = make_token(_key(stores), ACCOUNT, "access", world.NOW + issued, lifetime)
    _rejected(stores, w, verification.platform(token), "token_times", "lives longer than", RequestKind.ACCESS)


def test_clause_6_4_2_a_token_verifies_its_account_only(setup: tuple[world.World, Stores]) -> None:
    """The token proves control of the account, not of a device or a number someone else may use too."""
    w, stores = setup
    token = make_token(_key(stores), ACCOUNT, "erasure", world.NOW)
    with pytest.raises(requests.VerificationError, match="name only that account"):
        requests.submit(
            stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=verification.platform(token)
        )
    assert [r.status for r in governance.requests(stores.warehouse_path)] == [Status.REJECTED]
    assert audit.records(stores.audit_dir)[-1]["counts"] == {"token_account_only": 1}
    assert _events(stores, w.subject_pid) > 0


def test_clause_6_4_2_an_accepted_token_is_recorded_without_the_token_or_the_identifier(
    setup: tuple[world.World, Stores],
) -> None:
    _w, stores = setup
    token = make_token(_key(stores), ACCOUNT, "access", world.NOW - timedelta(minutes=1), issuer="app-login")
    row = requests.submit(
        stores, RequestKind.ACCESS, ACCOUNT_ONLY, world.NOW, verification=verification.platform(token)
    )
    assert row.status == Status.COMPLETED and (row.found or {}).get("lake.events", 0) > 0
    stored = governance.get_request(stores.warehouse_path, row.request_id)
    assert stored is not None and stored.verification == {
        "method": "platform_token",
        "verified_by": "app-login",
        "verified_at": world.NOW.isoformat(),
        "token_expires_at": (world.NOW + timedelta(minutes=29)).isoformat(),
        "key_id": _key(stores).key_id,
    }
    files = [stores.warehouse_path, stores.audit_dir / audit.LOG_NAME, *stores.requests_dir.rglob("*.*")]
    needles = {token: "the token", token.split(".")[1]: "its MAC", ACCOUNT: "the raw account id"}
    report = scan_files(files, needles)
    assert report.files >= 4 and report.findings == []
    assert _requests_audited(stores)


def test_clause_6_4_2_an_accepted_manual_verification_names_who_and_how(setup: tuple[world.World, Stores]) -> None:
    w, stores = setup
    claim = verification.manual(Method.DOCUMENTS, "  Zhang   Min ")
    row = requests.submit(stores, RequestKind.ERASURE, world.SUBJECT, world.NOW, verification=claim)
    assert row.status == Status.COMPLETED and _events(stores, w.subject_pid) == 0
    assert row.verification == {"method": "documents", "verified_by": "Zhang Min", "verified_at": world.NOW.isoformat()}


@pytest.mark.parametrize("who", ["", "   ", "x" * 65])
def test_clause_6_4_2_a_manual_verification_must_name_who_verified(setup: tuple[world.World, Stores], who: str) -> None:
    w, stores = setup
    _rejected(stores, w, verification.manual("in_person", who), "no_verifier", "who verified", RequestKind.ACCESS)


def test_clause_6_4_2_a_request_without_a_record_does_not_go_past_verified(setup: tuple[world.World, Stores]) -> None:
    """A request stored as verified without a record (made before records were kept) is rejected, not carried out."""
    w, stores = setup
    subject = {"accounts": [w.subject_pid], "identifiers": {}}
    when: datetime = world.NOW
    row = RequestRow("req-0123456789abcdef", "erasure", subject, {}, Status.VERIFIED, when, when, found={})
    governance.put_request(stores.warehouse_path, row)
    assert [r.request_id for r in requests.pending(stores)] == [row.request_id]
    done = requests.process(stores, row, when, actor="requests-flow", role="pipeline")
    assert done.status == Status.REJECTED and "no record of how the requester's identity was verified" in (
        done.reason or ""
    )
    assert requests.pending(stores) == [] and _events(stores, w.subject_pid) > 0
    assert audit.records(stores.audit_dir)[-1]["counts"] == {"unverified": 1}


def test_clause_6_4_2_a_token_without_a_configured_key_changes_nothing(setup: tuple[world.World, Stores]) -> None:
    """Production without DEVICERISK_VERIFICATION_KEY: a token cannot be checked, so it is neither accepted nor held
    against the requester (an operator's error); manual verification still works."""
    _, stores = setup
    token = make_token(_key(stores), ACCOUNT, "access", world.NOW)
    keyless = dataclasses.replace(stores, verification_key=None)
    with pytest.raises(MissingKeyError, match="DEVICERISK_VERIFICATION_KEY"):
        requests.submit(keyless, RequestKind.ACCESS, ACCOUNT_ONLY, world.NOW, verification=verification.platform(token))
    assert governance.requests(stores.warehouse_path) == [] and audit.records(stores.audit_dir) == []


def test_clause_6_4_2_no_key_is_needed_unless_tokens_are_checked(settings: Settings) -> None:
    stores = stores_for(settings.model_copy(update={"verification_key_file": None}))
    assert stores.verification_key is None  # production mode: never a key it was not given


def test_clause_6_4_2_a_warehouse_made_before_verification_records_gains_the_column(settings: Settings) -> None:
    """The schema is put in place by ``ALTER TABLE ... ADD COLUMN IF NOT EXISTS``: an older table keeps its rows."""
    import duckdb

    from devicerisk.store import warehouse

    path = settings.warehouse_path
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    con.execute(
        "CREATE TABLE subject_requests (request_id VARCHAR PRIMARY KEY, kind VARCHAR NOT NULL, subject JSON NOT NULL, "
        "options JSON NOT NULL, status VARCHAR NOT NULL, received_at TIMESTAMPTZ NOT NULL, updated_at TIMESTAMPTZ "
        "NOT NULL, found JSON, done JSON NOT NULL DEFAULT '[]', deleted_at TIMESTAMPTZ, reason VARCHAR)"
    )
    con.execute(
        "INSERT INTO subject_requests VALUES ('req-old', 'access', '{}', '{}', 'completed', ?, ?, NULL, '[]', NULL, "
        "NULL)",
        [world.NOW, world.NOW],
    )
    con.close()
    warehouse._READY.discard(path.resolve())
    (old,) = governance.requests(path)
    assert old.request_id == "req-old" and old.verification is None
