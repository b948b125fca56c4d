"""Encryption at rest: AES-256-GCM sealing with key ids and associated data."""

from __future__ import annotations

import secrets

import pytest

from devicerisk.privacy.encryption import MAGIC, DecryptionError, seal, sealed_key_id, unseal
from devicerisk.privacy.keys import Key

PLAINTEXT = b'{"line": 2, "raw": "imei 352099001761481, Li Wei"}\n'
ASSOCIATED = b"batch-0123456789abcdef"
_HEADER = len(MAGIC) + 12  # magic and key id


@pytest.fixture
def key() -> Key:
    return Key.from_bytes(secrets.token_bytes(32), "quarantine")


def test_round_trip(key: Key) -> None:
    """Unsealing a sealed blob gives back the plaintext, which does not appear in the blob."""
    blob = seal(key, PLAINTEXT, ASSOCIATED)
    assert blob.startswith(MAGIC)
    assert PLAINTEXT not in blob
    assert b"352099001761481" not in blob
    assert unseal(key, blob, ASSOCIATED) == PLAINTEXT


def test_round_trip_empty_plaintext(key: Key) -> None:
    assert unseal(key, seal(key, b"", ASSOCIATED), ASSOCIATED) == b""


def test_nonce_is_fresh(key: Key) -> None:
    """Sealing the same plaintext twice gives different blobs."""
    assert seal(key, PLAINTEXT, ASSOCIATED) != seal(key, PLAINTEXT, ASSOCIATED)


def _tampered(blob: bytes, position: int, flip: int) -> bytes:
    out = bytearray(blob)
    out[position] ^= flip
    return bytes(out)


@pytest.mark.parametrize("flip", [0x01, 0x80], ids=["low-bit", "high-bit"])
def test_tampering_any_byte_after_the_header_fails(key: Key, flip: int) -> None:
    """Flipping any bit pattern in any byte of the nonce, ciphertext or tag is detected."""
    blob = seal(key, PLAINTEXT, ASSOCIATED)
    for position in range(_HEADER, len(blob)):
        with pytest.raises(DecryptionError):
            unseal(key, _tampered(blob, position, flip), ASSOCIATED)


def test_tampering_any_header_byte_low_bit_fails(key: Key) -> None:
    """Flipping the low bit of a magic or key-id byte is rejected."""
    blob = seal(key, PLAINTEXT, ASSOCIATED)
    for position in range(_HEADER):
        with pytest.raises(DecryptionError):
            unseal(key, _tampered(blob, position, 0x01), ASSOCIATED)


def test_tampering_any_header_byte_high_bit_fails(key: Key) -> None:
    """A key-id byte corrupted to a non-ASCII value is reported as a DecryptionError too."""
    blob = seal(key, PLAINTEXT, ASSOCIATED)
    for position in range(_HEADER):
        with pytest.raises(DecryptionError):
            unseal(key, _tampered(blob, position, 0x80), ASSOCIATED)


def test_truncated_blob_fails(key: Key) -> None:
    blob = seal(key, PLAINTEXT, ASSOCIATED)
    for cut in (len(blob) - 1, len(blob) - 16, len(MAGIC) + 12 + 5, len(MAGIC) + 3, 0):
        with pytest.raises(DecryptionError):
            unseal(key, blob[:cut], ASSOCIATED)


def test_tampered_header_fails(key: Key) -> None:
    """A changed magic or key id is rejected before decryption."""
    blob = seal(key, PLAINTEXT, ASSOCIATED)
    with pytest.raises(DecryptionError):
        unseal(key, b"X" + blob[1:], ASSOCIATED)
    key_id_at = len(MAGIC)
    with pytest.raises(DecryptionError):
        unseal(key, blob[:key_id_at] + b"0" * 12 + blob[key_id_at + 12 :], ASSOCIATED)


def test_different_key_fails(key: Key) -> None:
    other = Key.from_bytes(secrets.token_bytes(32), "quarantine")
    assert other.key_id != key.key_id
    with pytest.raises(DecryptionError):
        unseal(other, seal(key, PLAINTEXT, ASSOCIATED), ASSOCIATED)


def test_different_key_material_with_the_same_id_fails(key: Key) -> None:
    """Even if the key id matches (a mislabelled key), authentication fails."""
    impostor = Key(secrets.token_bytes(32), key.key_id)
    with pytest.raises(DecryptionError):
        unseal(impostor, seal(key, PLAINTEXT, ASSOCIATED), ASSOCIATED)


@pytest.mark.parametrize(
    "associated", [b"", b"batch-0123456789abcdeF", ASSOCIATED + b"x"], ids=["empty", "other-case", "longer"]
)
def test_wrong_associated_data_fails(key: Key, associated: bytes) -> None:
    """A blob moved to another batch (other associated data) does not decrypt."""
    with pytest.raises(DecryptionError):
        unseal(key, seal(key, PLAINTEXT, ASSOCIATED), associated)


def test_sealed_key_id(key: Key) -> None:
    """The key id is readable without the key, so the right key can be found after rotation."""
    assert sealed_key_id(seal(key, PLAINTEXT, ASSOCIATED)) == key.key_id


def test_sealed_key_id_rejects_foreign_data() -> None:
    with pytest.raises(DecryptionError):
        sealed_key_id(b"PK\x03\x04 not ours")
