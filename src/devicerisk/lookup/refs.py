"""Masked references: how a pseudonym is shown to people, and how the service finds it again.

A pseudonym is 128 bits (32 hex digits), exactly one AES block. A reference is that block encrypted with
AES-256 under a key derived from the pseudonym key, one key per kind (account, transaction, device):
a keyed permutation, so the service turns a reference back into its pseudonym by decrypting it, with no
table of references to build or keep in memory, while without the key a reference cannot be linked to a
pseudonym (in the lake, an export or another kind's reference). A reference decrypts to *some* block
whatever it is; it is accepted only when the pseudonym it gives is in the snapshot being read, so a
forged or stale reference finds nothing. References change when the pseudonym key is rotated.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import re

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from devicerisk.privacy.keys import Key

#: The kinds of reference and their prefixes.
KINDS = {"account": "acc", "transaction": "txn", "device": "dev"}
_PID = re.compile(r"[0-9a-f]{32}")
_REF = re.compile(r"(acc|txn|dev)_([a-z2-7]{26})")


class Refs:
    """References of one pseudonym key."""

    def __init__(self, key: Key) -> None:
        keys = {
            kind: hmac.new(key.material, b"devicerisk/lookup-ref/" + kind.encode(), "sha256").digest() for kind in KINDS
        }
        # one block, never a message: ECB of a single block is the bare AES permutation; a cipher is made once per
        # kind (each call takes a fresh encryptor or decryptor from it)
        self._ciphers = {kind: Cipher(algorithms.AES(k), modes.ECB()) for kind, k in keys.items()}

    def __repr__(self) -> str:  # never print the keys
        return "Refs()"

    def _cipher(self, kind: str) -> Cipher:
        cipher = self._ciphers.get(kind)
        if cipher is None:
            raise ValueError(f"unknown reference kind {kind!r} (known: {', '.join(KINDS)})")
        return cipher

    def ref(self, kind: str, pid: str) -> str:
        """The reference of the pseudonym ``pid`` of ``kind``."""
        if not _PID.fullmatch(pid):
            raise ValueError("a reference is made of a pseudonym (32 hex digits)")
        enc = self._cipher(kind).encryptor()
        block = enc.update(bytes.fromhex(pid)) + enc.finalize()
        return f"{KINDS[kind]}_{base64.b32encode(block).decode().rstrip('=').lower()}"

    def pid(self, kind: str, ref: str) -> str | None:
        """The pseudonym a well-formed reference of ``kind`` stands for (None: not a reference of that kind).

        Any well-formed reference gives a pseudonym; whether it names anything is for the view to say.
        """
        match = _REF.fullmatch(ref) if isinstance(ref, str) else None
        if match is None or match.group(1) != KINDS.get(kind):
            return None
        try:
            block = base64.b32decode(match.group(2).upper() + "======")
        except (binascii.Error, ValueError):
            return None
        dec = self._cipher(kind).decryptor()
        return (dec.update(block) + dec.finalize()).hex()
