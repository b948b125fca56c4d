"""The k-anonymity rule for published aggregates: a cell that describes fewer than ``k`` subjects is suppressed.

One rule for every aggregate that leaves the stores: the partners' de-identified exports
(:mod:`devicerisk.analytics.share`) and the aggregates a decommissioning keeps (5.1.3,
:mod:`devicerisk.governance.final_aggregates`). A suppressed cell does not leave; reports count suppressed
cells, never their sizes.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from devicerisk.config import Settings

#: The default k (``DEVICERISK_ANONYMITY_K``): a cell describes at least this many distinct subjects.
DEFAULT_K: int = Settings.model_fields["anonymity_k"].default


def check_k(k: int) -> int:
    """``k`` if it can protect anyone (:class:`ValueError` otherwise)."""
    if k < 2:
        raise ValueError(f"k must be at least 2 (got {k}): a cell of one subject describes that subject")
    return k


def small_cells(cells: pa.Table, subjects: str, k: int) -> pa.Array:
    """True where a cell's count of distinct subjects (column ``subjects``) is under ``k``: those are suppressed."""
    return pc.less(cells.column(subjects), check_k(k))


def suppress(cells: pa.Table, subjects: str, k: int) -> tuple[pa.Table, int]:
    """The cells of at least ``k`` subjects, and how many cells were suppressed."""
    small = small_cells(cells, subjects, k)
    kept = cells.filter(pc.invert(small))
    return kept, cells.num_rows - kept.num_rows
