"""The model registry: skops only, trusted types enforced, clear errors, atomic champion pointer."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from sklearn.preprocessing import FunctionTransformer

from devicerisk.risk.features import FEATURE_NAMES
from devicerisk.risk.model import fit
from devicerisk.store import registry


def small_model() -> object:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(600, len(FEATURE_NAMES)))
    y = (X[:, 0] + rng.normal(scale=0.5, size=600) > 1.2).astype(int)
    model = fit(X[:400], y[:400], X[400:], y[400:], list(FEATURE_NAMES))
    assert model.kind == "supervised"  # enough frauds to calibrate on
    return model.estimator


def test_round_trip_and_champion(tmp_path: Path) -> None:
    estimator = small_model()
    registry.save(tmp_path, "v1", {"transaction": estimator}, {"version": "v1"}, {"card.md": b"# card"})
    assert registry.versions(tmp_path) == ["v1"] and registry.champion(tmp_path) is None
    loaded = registry.load_estimator(tmp_path, "v1", "transaction")
    X = np.ones((3, len(FEATURE_NAMES)))
    assert np.allclose(loaded.predict_proba(X), estimator.predict_proba(X))  # type: ignore[attr-defined]
    registry.promote(tmp_path, "v1")
    assert registry.champion(tmp_path) == "v1"
    assert not list(tmp_path.glob("**/*.pkl")) and not list(tmp_path.glob("**/*.pickle"))
    with pytest.raises(FileExistsError):
        registry.save(tmp_path, "v1", {}, {"version": "v1"})


def test_unknown_version_is_a_clear_error(tmp_path: Path) -> None:
    registry.save(tmp_path, "v1", {}, {"version": "v1"})
    with pytest.raises(registry.UnknownModelVersion, match=r"no model version 'v9'.*known: v1"):
        registry.load_estimator(tmp_path, "v9", "transaction")
    with pytest.raises(registry.UnknownModelVersion):
        registry.promote(tmp_path, "v9")
    with pytest.raises(registry.UnknownModelVersion, match="not a model version"):
        registry.metadata(tmp_path, "../v1")


def test_a_file_with_untrusted_types_is_refused(tmp_path: Path) -> None:
    registry.save(tmp_path, "bad", {"transaction": FunctionTransformer(func=os.system)}, {"version": "bad"})
    with pytest.raises(registry.UntrustedModel, match="system"):
        registry.load_estimator(tmp_path, "bad", "transaction")


def test_the_trusted_list_is_explicit(tmp_path: Path) -> None:
    registry.save(tmp_path, "v1", {"transaction": small_model()}, {"version": "v1"})
    narrow = tuple(t for t in registry.TRUSTED_TYPES if "TreePredictor" not in t)
    with pytest.raises(registry.UntrustedModel, match="TreePredictor"):
        registry.load_estimator(tmp_path, "v1", "transaction", trusted=narrow)
