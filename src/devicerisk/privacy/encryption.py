"""Encryption at rest (AES-256-GCM) for the stores that must keep a raw record, such as quarantine."""

from __future__ import annotations

import os

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from devicerisk.privacy.keys import Key

MAGIC = b"DRENC1"
_NONCE = 12
_KEY_ID = 12


class DecryptionError(RuntimeError):
    """The ciphertext is corrupt, tampered with, or sealed with another key."""


def seal(key: Key, plaintext: bytes, associated: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext``, bound to ``associated`` (e.g. the batch id)."""
    nonce = os.urandom(_NONCE)
    key_id = key.key_id.encode().ljust(_KEY_ID)[:_KEY_ID]
    return MAGIC + key_id + nonce + AESGCM(key.material).encrypt(nonce, plaintext, associated)


def sealed_key_id(blob: bytes) -> str:
    """The id of the key a blob was sealed with, so the right key can be found after rotation."""
    if not blob.startswith(MAGIC):
        raise DecryptionError("not an encrypted devicerisk file")
    try:
        return blob[len(MAGIC) : len(MAGIC) + _KEY_ID].decode("ascii").strip()
    except UnicodeDecodeError:
        raise DecryptionError("the key id in the header is corrupt") from None


def unseal(key: Key, blob: bytes, associated: bytes) -> bytes:
    """Decrypt a blob made by :func:`seal`; raises if it was altered or the key is wrong."""
    if sealed_key_id(blob) != key.key_id:
        raise DecryptionError("the blob was sealed with another key")
    start = len(MAGIC) + _KEY_ID
    nonce, ciphertext = blob[start : start + _NONCE], blob[start + _NONCE :]
    try:
        return AESGCM(key.material).decrypt(nonce, ciphertext, associated)
    except Exception:
        raise DecryptionError("authentication failed: the blob is corrupt or was tampered with") from None
