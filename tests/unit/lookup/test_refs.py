"""References are the documented construction (AES-256 of the pseudonym's block under a per-kind key, in RFC 4648
base 32), so they stay the same whatever computes them; and they round-trip from many threads at once."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import threading

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devicerisk.lookup.refs import KINDS, Refs
from devicerisk.privacy.keys import Key


def _reference(key: Key, kind: str, pid: str) -> str:
    kind_key = hmac.new(key.material, b"devicerisk/lookup-ref/" + kind.encode(), hashlib.sha256).digest()
    enc = Cipher(algorithms.AES(kind_key), modes.ECB()).encryptor()
    block = enc.update(bytes.fromhex(pid)) + enc.finalize()
    return f"{KINDS[kind]}_{base64.b32encode(block).decode().rstrip('=').lower()}"


def test_references_are_the_documented_construction() -> None:
    key = Key.from_bytes(secrets.token_bytes(32), "pseudonym")
    refs = Refs(key)
    for kind in KINDS:
        for pid in ["0" * 32, "f" * 32, *(secrets.token_hex(16) for _ in range(500))]:
            ref = refs.ref(kind, pid)
            assert ref == _reference(key, kind, pid)
            assert refs.pid(kind, ref) == pid
    # the last character carries 2 bits of padding: another last character may name the same block
    ref = refs.ref("account", "0" * 32)
    assert refs.pid("account", ref[:-1] + "z") is not None


def test_references_round_trip_from_many_threads_at_once() -> None:
    refs = Refs(Key.from_bytes(secrets.token_bytes(32), "pseudonym"))
    failures: list[str] = []

    def work() -> None:
        for _ in range(3000):
            pid = secrets.token_hex(16)
            for kind in KINDS:
                if refs.pid(kind, refs.ref(kind, pid)) != pid:
                    failures.append(pid)

    threads = [threading.Thread(target=work) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
