"""Keyed pseudonyms: HMAC-SHA256, one derived key per identifier domain.

The space of IMEIs, MACs and IPv4 addresses is small enough to brute-force an unkeyed hash, so every
pseudonym is keyed. Each domain gets its own subkey, so an IMEI and a phone number with the same
digits never share a pseudonym. The PRF runs over the distinct values of a column, in one call: on
OpenSSL through the small ``devicerisk._prf`` extension when it was built, otherwise vectorised in
DuckDB. :func:`hmac_sha256_hex` is the same function, one value at a time, for lookups and tests.

Pseudonyms leave the platform only re-keyed (:func:`rekey`) under a key derived for one recipient
(:meth:`Pseudonymiser.derive`), so what two recipients hold cannot be joined to each other or to the lake.
"""

from __future__ import annotations

import hashlib
import hmac

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from devicerisk import engine
from devicerisk.privacy.keys import Key
from devicerisk.privacy.normalise import normaliser

PSEUDONYM_HEX_CHARS = 32  # 128 bits: collisions stay negligible at billions of identifiers
_BLOCK = 64  # SHA-256 block size in bytes

try:  # the optional OpenSSL accelerator (see _prf.c)
    from devicerisk import _prf
except ImportError:  # pragma: no cover - exercised where the extension could not be built
    _prf = None


def hmac_pads(key: bytes) -> tuple[bytes, bytes]:
    """RFC 2104 inner and outer padded keys."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key.ljust(_BLOCK, b"\0")
    return bytes(b ^ 0x36 for b in key), bytes(b ^ 0x5C for b in key)


def hmac_sha256_arrow(key: bytes, values: pa.Array, hex_chars: int = 64) -> pa.Array:
    """HMAC-SHA256 of each UTF-8 string in ``values``, its first ``hex_chars`` hex digits (null stays null)."""
    if _prf is not None:
        return hmac_sha256_native(key, values, hex_chars)
    return hmac_sha256_duckdb(key, values, hex_chars)


def hmac_sha256_native(key: bytes, values: pa.Array, hex_chars: int = 64) -> pa.Array:
    """:func:`hmac_sha256_arrow` on OpenSSL, straight from the Arrow buffers."""
    if _prf is None:
        raise RuntimeError("the devicerisk._prf extension is not built")
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        values = values.cast(pa.string())
    width = 8 if pa.types.is_large_string(values.type) else 4
    _, offsets, data = values.buffers()
    n = len(values)
    digests = _prf.hmac_sha256_hex(key, offsets, data or b"", width, values.offset, n, hex_chars)
    out_offsets = pa.py_buffer(np.arange(0, (n + 1) * hex_chars, hex_chars, dtype=np.int32))
    result = pa.Array.from_buffers(pa.string(), n, [None, out_offsets, pa.py_buffer(digests)])
    return result if values.null_count == 0 else pc.if_else(pc.is_valid(values), result, None)


def hmac_sha256_duckdb(key: bytes, values: pa.Array, hex_chars: int = 64) -> pa.Array:
    """:func:`hmac_sha256_arrow`, vectorised in DuckDB (no extension needed)."""
    ipad, opad = hmac_pads(key)
    query = "SELECT left(sha256($opad || unhex(sha256($ipad || encode(v)))), $n) AS h FROM pseudonym_input"
    with engine.registered(pseudonym_input=pa.table({"v": values})) as con:
        result = con.sql(query, params={"ipad": ipad, "opad": opad, "n": hex_chars}).to_arrow_table()
    return result.column("h").combine_chunks()


def hmac_sha256_hex(key: bytes, value: str) -> str:
    """The same function as :func:`hmac_sha256_arrow`, for one value."""
    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()


def rekey(key: Key, pseudonyms: pa.Array) -> pa.Array:
    """``pseudonyms`` (or any identifiers) mapped into ``key``'s domain: HMAC-SHA256 under ``key``, as many hex
    digits as a pseudonym has (null stays null). Equal inputs stay equal, so counts and joins within one
    domain are kept; without ``key`` nothing maps them back."""
    return hmac_sha256_arrow(key.material, pseudonyms, PSEUDONYM_HEX_CHARS)


class Pseudonymiser:
    """Normalise, then pseudonymise, identifiers of one key, in named domains."""

    def __init__(self, key: Key, phone_region: str = "CN") -> None:
        self.key_id = key.key_id
        self._phone_region = phone_region
        self._master = key.material
        self._subkeys: dict[str, bytes] = {}

    def _subkey(self, domain: str) -> bytes:
        if domain not in self._subkeys:
            self._subkeys[domain] = hmac.new(
                self._master, b"devicerisk/pseudonym/" + domain.encode(), "sha256"
            ).digest()
        return self._subkeys[domain]

    def derive(self, purpose: str, label: str, salt: bytes) -> Key:
        """A key for one recipient of data (``purpose``: what it is for; ``label``: whom), derived from this key by
        HKDF-SHA256 with ``salt``. Its id names the domain; the derivation is one way, so the key reveals nothing
        of this one, and a fresh salt gives an unrelated key for the same label."""
        info = f"devicerisk/{purpose}/{label}".encode()
        material = HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(self._master)
        return Key.from_bytes(material, purpose)

    def normalise(self, domain: str, values: pa.Array) -> pa.Array:
        """Canonical form of ``values`` in ``domain`` (null where it is a placeholder or malformed)."""
        return normaliser(domain, self._phone_region)(values)

    def pseudonymise_normalised(self, domain: str, values: pa.Array) -> pa.Array:
        """Pseudonyms of already-normalised values.

        The native PRF hashes every value faster than distinct values can be found; the DuckDB
        fallback hashes each distinct value once.
        """
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        if _prf is not None:
            return hmac_sha256_native(self._subkey(domain), values, PSEUDONYM_HEX_CHARS)
        encoded = pc.dictionary_encode(values)
        digests = hmac_sha256_duckdb(self._subkey(domain), encoded.dictionary, PSEUDONYM_HEX_CHARS)
        return digests.take(encoded.indices)

    def pseudonymise(self, domain: str, values: pa.Array) -> pa.Array:
        """Pseudonyms of raw ``values`` in ``domain``."""
        return self.pseudonymise_normalised(domain, self.normalise(domain, values))

    def pseudonymise_one(self, domain: str, value: str) -> str | None:
        """The pseudonym of one raw value, e.g. an identifier a data subject or analyst gives."""
        normal = self.normalise(domain, pa.array([value], pa.string()))[0].as_py()
        if normal is None:
            return None
        return hmac_sha256_hex(self._subkey(domain), normal)[:PSEUDONYM_HEX_CHARS]
