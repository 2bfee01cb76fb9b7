"""The saved form of a model: a folder of native boosters (`<stem>.txt`) and `model.json`, and
the unfitted model for a task kind. The only I/O of `training.models` outside the pyfunc."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightgbm as lgb

from training.models import prior
from training.models.boosting import BoostParams, Encoding
from training.models.classifier import CLASSES, CalibratedClassifier, CalibrationMethod, Calibrator
from training.models.spend import QUANTILE_STEMS, SpendModel

META_FILE = "model.json"
Model = CalibratedClassifier | SpendModel
Boosters = Callable[[str], lgb.Booster]


def save(model: Model, folder: Path, **extra: Any) -> Path:
    """Write the boosters (`<stem>.txt`) and `model.json` (encoding, calibration, `extra` such
    as horizon_days and feature_service) to `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, booster in model.boosters.items():
        booster.save_model(str(folder / f"{stem}.txt"))
    meta: dict[str, Any] = {
        "kind": "binary" if isinstance(model, CalibratedClassifier) else "spend",
        "feature_names": list(model.encoding_.feature_names),
        "categories": {k: list(v) for k, v in model.encoding_.categories.items()},
        "outputs": list(model.outputs),
        "params": asdict(model.params or BoostParams()),
        "calibration_share": model.calibration_share,
        "prior": None if model.prior_ is None else model.prior_.document(),
        **extra,
    }
    if isinstance(model, CalibratedClassifier):
        meta["calibrator"] = None if model.calibrator_ is None else asdict(model.calibrator_)
    else:
        meta.update(
            margin=model.margin_,
            coverage=model.coverage,
            scale_floor=model.scale_floor_,
            levels=list(model.levels_),
        )
    (folder / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
    return folder


def read_meta(folder: Path) -> dict[str, Any]:
    """The `model.json` of a saved model folder."""
    return json.loads((folder / META_FILE).read_text())


def load(folder: Path) -> Model:
    """A model saved by `save`, with its native boosters (no pyfunc)."""
    meta = read_meta(folder)

    def booster(stem: str) -> lgb.Booster:
        return lgb.Booster(model_file=str(folder / f"{stem}.txt"))

    model = _classifier(meta, booster) if meta["kind"] == "binary" else _spend(meta, booster)
    model.with_prior(None if meta.get("prior") is None else prior.from_document(meta["prior"]))
    model.encoding_ = Encoding(
        tuple(meta["feature_names"]), {k: tuple(v) for k, v in meta["categories"].items()}
    )
    return model


def _classifier(meta: dict[str, Any], booster: Boosters) -> CalibratedClassifier:
    """The classifier of a `model.json` (without its encoding)."""
    cal = meta["calibrator"]
    classifier = CalibratedClassifier(
        BoostParams(**meta["params"]),
        calibration="isotonic" if cal is None else cal["method"],
        calibration_share=meta.get("calibration_share", 0.2),
    )
    classifier.calibrator_ = (
        None
        if cal is None
        else Calibrator(
            cal["method"], tuple(cal["x"]), tuple(cal["y"]), cal["slope"], cal["intercept"]
        )
    )
    classifier.booster_ = booster("booster")
    classifier.classes_ = CLASSES
    return classifier


def _spend(meta: dict[str, Any], booster: Boosters) -> SpendModel:
    """The spend model of a `model.json` (without its encoding)."""
    spend = SpendModel(
        BoostParams(**meta["params"]),
        coverage=meta["coverage"],
        calibration_share=meta.get("calibration_share", 0.2),
    )
    spend.count_, spend.spend_ = booster("count"), booster("spend")
    spend.quantile_ = [booster(stem) for stem in QUANTILE_STEMS]
    spend.margin_ = meta["margin"]
    spend.scale_floor_ = meta["scale_floor"]
    spend.levels_ = (float(meta["levels"][0]), float(meta["levels"][1]))
    return spend


def new_model(kind: str, params: BoostParams, calibration: CalibrationMethod = "isotonic") -> Model:
    """An unfitted model for a task kind ('binary' or 'spend'); `calibration` is the
    classifier's calibrator."""
    if kind == "binary":
        return CalibratedClassifier(params, calibration=calibration)
    if kind == "spend":
        return SpendModel(params)
    raise ValueError(f"unknown model kind {kind!r}; expected 'binary' or 'spend'")
