"""Desensitised display (5.2.2(2)): one masking function for every output a person reads."""

import pyarrow as pa
import pytest
from hypothesis import given
from hypothesis import strategies as st

from devicerisk.privacy.masking import mask, mask_columns


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("+8613812345678", "+861******5678"),
        ("13812345678", "138****5678"),
        ("alice@example.com", "a***@example.com"),
        ("203.0.113.45", "203.0.*.*"),
        ("2001:db8::1", "2001:db8:*"),
        ("490154203237518", "***********7518"),
        ("0123456789abcdef0123456789abcdef", "01234567…"),
        ("acct-1", "******"),
    ],
)
def test_clause_5_2_2_mask_shows_only_a_short_part(value: str, expected: str) -> None:
    assert mask(value) == expected


def test_mask_keeps_none_and_empty() -> None:
    assert mask(None) is None
    assert mask("") == ""


@given(st.text(min_size=9, max_size=40).filter(lambda s: s.strip() == s and "*" not in s))
def test_mask_never_returns_the_whole_value(value: str) -> None:
    masked = mask(value)
    assert masked != value
    assert value not in (masked or "")


def test_mask_columns_masks_pseudonym_columns_and_named_ones() -> None:
    table = pa.table({"account_id_pid": ["0123456789abcdef0123456789abcdef"], "phone": ["13812345678"], "n": [1]})
    masked = mask_columns(table, ["phone"])
    assert masked.column("account_id_pid").to_pylist() == ["01234567…"]
    assert masked.column("phone").to_pylist() == ["138****5678"]
    assert masked.column("n").to_pylist() == [1]
