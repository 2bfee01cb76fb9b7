"""The saved form of a model: a folder of native boosters (`<stem>.txt`) and `model.json`, and
the unfitted model for a task kind. The only I/O of `training.models` outside the pyfunc.

A saved folder is checked before it is trusted: `checksums` (sha256 of every file, recorded at
registration) and `verify` catch a file changed or cut short since; `probe` loads and runs the
boosters in a short child process first, because LightGBM aborts or segfaults the whole process
on a damaged model file instead of raising.
"""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import lightgbm as lgb

from memberscore.errors import ModelNotReady
from training.models import prior
from training.models.boosting import BoostParams, Encoding
from training.models.classifier import CLASSES, CalibratedClassifier, CalibrationMethod, Calibrator
from training.models.spend import QUANTILE_STEMS, SpendModel

META_FILE = "model.json"
BOOSTER_SUFFIX = ".txt"
Model = CalibratedClassifier | SpendModel
Boosters = Callable[[str], lgb.Booster]
# Run by `probe` in a child process: mark each file before touching it, so the last mark
# names the file that killed the child (LightGBM writes its own messages to stdout too).
_MARK = "memberscore-probe:"
_PROBE = f"""
import sys
import lightgbm as lgb
import numpy as np
for path in sys.argv[1:]:
    print("{_MARK}" + path, flush=True)
    booster = lgb.Booster(model_file=path)
    booster.predict(np.zeros((1, booster.num_feature())))
print("{_MARK}ok", flush=True)
"""


class DamagedModel(ModelNotReady):
    """A saved model file that differs from its recorded checksum or that LightGBM cannot
    load; `path` is the file (None when unknown)."""

    def __init__(self, message: str, path: Path | None = None) -> None:
        super().__init__(message)
        self.path = path


def checksums(folder: Path) -> dict[str, str]:
    """sha256 (hex) of every file under `folder`, by its '/'-separated path relative to it."""
    return {
        path.relative_to(folder).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def verify(folder: Path, expected: Mapping[str, str]) -> None:
    """Raise DamagedModel naming the first file of `folder` that is missing, added or changed
    against `expected` (`checksums` of the folder as registered)."""
    found = checksums(folder)
    for name in sorted(set(expected) | set(found)):
        if name not in found:
            why = "is missing"
        elif name not in expected:
            why = "was not there when the version was registered"
        elif found[name] != expected[name]:
            why = (
                f"does not match the sha256 recorded at registration (found "
                f"{found[name][:12]}…, recorded {expected[name][:12]}…): damaged or replaced"
            )
        else:
            continue
        raise DamagedModel(why, folder / name)


def probe(folders: Sequence[Path], timeout_seconds: float = 120.0) -> None:
    """Load every booster of `folders` and predict one row in a child process; DamagedModel
    naming the file if the child fails or dies (a truncated file aborts or segfaults LightGBM,
    which must not take this process down)."""
    files = [str(path) for folder in folders for path in sorted(folder.glob(f"*{BOOSTER_SUFFIX}"))]
    if not files:
        return
    try:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, *files],
            capture_output=True,
            encoding="utf-8",
            errors="replace",
            timeout=timeout_seconds,
        )
    except subprocess.TimeoutExpired as error:
        raise DamagedModel(
            f"could not be checked: loading the boosters took over {timeout_seconds:.0f} s"
        ) from error
    marks = [line[len(_MARK) :] for line in done.stdout.splitlines() if line.startswith(_MARK)]
    if done.returncode == 0 and marks[-1:] == ["ok"]:
        return
    culprit = Path(marks[-1]) if marks and marks[-1] in files else None
    raise DamagedModel(f"cannot be loaded by LightGBM ({_death(done)})", culprit)


def _death(done: subprocess.CompletedProcess[str]) -> str:
    """How the probe child ended: the signal or exit code, and LightGBM's last message."""
    code = done.returncode
    how = f"exit code {code}"
    if code < 0:
        try:
            how = f"the loader died of {signal.Signals(-code).name}"
        except ValueError:
            how = f"the loader died of signal {-code}"
    said = (done.stdout + done.stderr).splitlines()
    fatal = [line for line in said if "[Fatal]" in line or "Error:" in line]
    last = "".join(c if c.isprintable() else "?" for c in fatal[-1].strip()[:200]) if fatal else ""
    return f"{how}: {last}" if last else how


def save(model: Model, folder: Path, **extra: Any) -> Path:
    """Write the boosters (`<stem>.txt`) and `model.json` (encoding, calibration, `extra` such
    as horizon_days and feature_service) to `folder`; returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for stem, booster in model.boosters.items():
        booster.save_model(str(folder / f"{stem}{BOOSTER_SUFFIX}"))
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
        return lgb.Booster(model_file=str(folder / f"{stem}{BOOSTER_SUFFIX}"))

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
            cal["method"],
            tuple(cal["x"]),
            tuple(cal["y"]),
            cal["slope"],
            cal["intercept"],
            cal.get("count_slope", 0.0),
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
