"""The model registry: one folder per model version under ``models_dir``, and a champion pointer.

Models are saved with skops, never pickle. Loading first lists the file's types that skops does not
trust by default and refuses the file unless every one is in :data:`TRUSTED_TYPES`, the explicit list
of what this project's models are made of; nothing else is ever instantiated. The champion is a small
pointer file replaced atomically, so a reader sees the old champion or the new one.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import skops.io as sio

from devicerisk.store.files import write_atomic

CHAMPION = "CHAMPION"
METADATA = "metadata.json"
_VERSION = re.compile(r"[A-Za-z0-9_.\-]{1,64}")

#: Types skops does not trust by default that our models are built from (HistGradientBoosting, its
#: isotonic calibration, IsolationForest). Anything else in a model file refuses the load.
TRUSTED_TYPES: tuple[str, ...] = (
    "collections.OrderedDict",
    "numpy.dtype",
    "sklearn._loss.link.IdentityLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.HistGradientBoostingClassifier",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.ensemble._iforest.IsolationForest",
    "sklearn.frozen._frozen.FrozenEstimator",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.tree._classes.ExtraTreeRegressor",
    "sklearn.tree._tree.Tree",
    "sklearn.utils._bunch.Bunch",
)


class UnknownModelVersion(LookupError):
    """No model of that version is in the registry."""


class UntrustedModel(ValueError):
    """A model file holds types outside the trusted list; it was not loaded."""


def _folder(models_dir: Path, version: str) -> Path:
    if not _VERSION.fullmatch(version):
        raise UnknownModelVersion(f"not a model version: {version!r}")
    return models_dir / version


def versions(models_dir: Path) -> list[str]:
    """Every registered version, oldest first (versions sort by time)."""
    if not models_dir.is_dir():
        return []
    return sorted(p.name for p in models_dir.iterdir() if p.is_dir() and (p / METADATA).exists())


def save(
    models_dir: Path,
    version: str,
    estimators: dict[str, Any],
    metadata: dict[str, Any],
    files: dict[str, bytes] | None = None,
    snapshots: dict[str, pa.Table] | None = None,
) -> Path:
    """Write a new version: ``<name>.skops`` per estimator, extra files, Parquet snapshots, then metadata last."""
    folder = _folder(models_dir, version)
    if (folder / METADATA).exists():
        raise FileExistsError(f"model version {version} already exists")
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    for name, estimator in estimators.items():
        write_atomic(folder / f"{name}.skops", sio.dumps(estimator))
    for name, data in (files or {}).items():
        write_atomic(folder / name, data, mode=0o640)
    for name, table in (snapshots or {}).items():
        sink = pa.BufferOutputStream()
        pq.write_table(table, sink, compression="zstd")
        write_atomic(folder / f"{name}.parquet", sink.getvalue().to_pybytes())
    # the metadata marks the version complete: a crash before this line leaves no listed version
    write_atomic(folder / METADATA, json.dumps(metadata, indent=2, sort_keys=True, default=str).encode())
    return folder


def metadata(models_dir: Path, version: str) -> dict[str, Any]:
    """A version's metadata; :class:`UnknownModelVersion` if there is no such version."""
    path = _folder(models_dir, version) / METADATA
    if not path.exists():
        known = ", ".join(versions(models_dir)) or "none"
        raise UnknownModelVersion(f"no model version {version!r} in {models_dir} (known: {known})")
    return json.loads(path.read_text())


def load_estimator(models_dir: Path, version: str, name: str, trusted: tuple[str, ...] = TRUSTED_TYPES) -> Any:
    """Load one estimator of a version, refusing it if it holds any type outside ``trusted``."""
    metadata(models_dir, version)  # unknown versions fail first, with a clear message
    path = _folder(models_dir, version) / f"{name}.skops"
    data = path.read_bytes()
    untrusted = sorted(set(sio.get_untrusted_types(data=data)) - set(trusted))
    if untrusted:
        raise UntrustedModel(f"model {version}/{name} holds untrusted types {untrusted}; refusing to load it")
    return sio.loads(data, trusted=list(trusted))


def read_file(models_dir: Path, version: str, name: str) -> bytes:
    """An extra file saved with a version (e.g. the model card)."""
    metadata(models_dir, version)
    return (_folder(models_dir, version) / name).read_bytes()


def champion(models_dir: Path) -> str | None:
    """The champion's version, or None before the first promotion."""
    path = models_dir / CHAMPION
    return path.read_text().strip() if path.exists() else None


def promote(models_dir: Path, version: str) -> None:
    """Make ``version`` the champion (an atomic pointer swap)."""
    metadata(models_dir, version)
    write_atomic(models_dir / CHAMPION, f"{version}\n".encode(), mode=0o640)
