"""Data governance: retention and purges, legal holds, data-subject requests, subjects, key rotation.

What the stores hold is treated at ingest by :mod:`devicerisk.privacy`; this package acts on it later,
under the contract's retention policy and the data subjects' rights.
"""
