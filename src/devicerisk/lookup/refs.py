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

import hmac
import re
import threading
from typing import Any

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
        # kind, and each thread keeps its own encryptor and decryptor of it
        self._ciphers = {kind: Cipher(algorithms.AES(k), modes.ECB()) for kind, k in keys.items()}
        self._local = threading.local()

    def __repr__(self) -> str:  # never print the keys
        return "Refs()"

    def _cipher(self, kind: str) -> Cipher:
        cipher = self._ciphers.get(kind)
        if cipher is None:
            raise ValueError(f"unknown reference kind {kind!r} (known: {', '.join(KINDS)})")
        return cipher

    def _context(self, kind: str, direction: int) -> Any:
        """This thread's encryptor (0) or decryptor (1) for ``kind``: made once, then reused. ECB keeps no state
        between blocks, so one context serves every call, but a context must not be shared between threads."""
        contexts = getattr(self._local, "contexts", None)
        if contexts is None:
            contexts = self._local.contexts = {}
        context = contexts.get((kind, direction))
        if context is None:
            cipher = self._cipher(kind)
            context = contexts[kind, direction] = cipher.decryptor() if direction else cipher.encryptor()
        return context

    def ref(self, kind: str, pid: str) -> str:
        """The reference of the pseudonym ``pid`` of ``kind``."""
        if not _PID.fullmatch(pid):
            raise ValueError("a reference is made of a pseudonym (32 hex digits)")
        block = self._context(kind, 0).update(bytes.fromhex(pid))
        return f"{KINDS[kind]}_{_base32(block)}"

    def pid(self, kind: str, ref: str) -> str | None:
        """The pseudonym a well-formed reference of ``kind`` stands for (None: not a reference of that kind).

        Any well-formed reference gives a pseudonym; whether it names anything is for the view to say.
        """
        match = _REF.fullmatch(ref) if isinstance(ref, str) else None
        if match is None or match.group(1) != KINDS.get(kind):
            return None
        return self._context(kind, 1).update(_unbase32(match.group(2))).hex()


#: Base 32 (RFC 4648, lower case, unpadded) by pairs of characters: a block's 26 characters in 13 steps.
_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567"
_PAIRS = [a + b for a in _ALPHABET for b in _ALPHABET]
_TO_INT_DIGITS = str.maketrans(_ALPHABET, "0123456789abcdefghijklmnopqrstuv")


def _base32(block: bytes) -> str:
    """A 16-byte block in base 32: its 128 bits and 2 zero bits of padding, 10 bits at a time."""
    n = int.from_bytes(block, "big") << 2
    return "".join([_PAIRS[(n >> shift) & 1023] for shift in range(120, -1, -10)])


def _unbase32(text: str) -> bytes:
    """The 16-byte block of 26 base-32 characters (``[a-z2-7]{26}``); the 2 padding bits are ignored. The
    characters are translated to the digits ``int`` reads in base 32 (0-9, a-v), which does the rest in C."""
    return (int(text.translate(_TO_INT_DIGITS), 32) >> 2).to_bytes(16, "big")
