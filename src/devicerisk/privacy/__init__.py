"""Treatment at ingest: normalise, pseudonymise, minimise, consent, keys, encryption, masking, redaction.

Every record is treated here before any store holds it; :mod:`devicerisk.governance` acts on the stores
afterwards (retention, requests, holds, rotation).
"""
