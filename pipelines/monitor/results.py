"""What a monitor run found: per champion its drift tables, matured figures and findings, and
the run as a whole with its headline (the lines the CLI prints)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from training.monitoring import psi, verdict


@dataclass(frozen=True)
class Matured:
    """Performance at one matured cutoff: where the predictions came from ('batch run' or
    'recomputed'), whether the cutoff is after the training window, the figures now and at
    promotion (`training.monitoring.performance`)."""

    cutoff: pd.Timestamp
    source: str
    out_of_time: bool
    figures: Mapping[str, float]
    promoted: Mapping[str, float]


@dataclass(frozen=True)
class ModelCheck:
    """Everything checked about one champion."""

    name: str
    version: str
    horizon_days: int
    score: str
    reference_cutoffs: tuple[pd.Timestamp, ...]
    reference_rows: int
    current_rows: int
    features: pd.DataFrame
    scores: pd.DataFrame
    score_reference: psi.Reference
    score_current: tuple[float, ...]
    matured: Matured | None
    findings: tuple[verdict.Finding, ...]
    retrain: str

    @property
    def drifted(self) -> bool:
        """True when a figure is past its threshold."""
        return bool(self.findings)

    def line(self) -> str:
        """One line: drift, score PSI and matured figures beside the promoted ones."""
        top = self.features.iloc[0] if len(self.features) else None
        worst = "" if top is None else f"max feature PSI {top['psi']:.3f} ({top['variable']})"
        text = (
            f"{self.name} v{self.version}: {worst}, score {self.score} PSI "
            f"{self.scores['psi'].iloc[0]:.3f}"
        )
        if self.matured is None:
            return text + "; no matured predictions yet"
        m = self.matured
        figures = ", ".join(
            f"{k} {v:.3f}" + (f" (promoted {m.promoted[k]:.3f})" if k in m.promoted else "")
            for k, v in m.figures.items()
            if k not in ("rows", "base_rate")
        )
        when = "" if m.out_of_time else ", inside the training window"
        return (
            f"{text}; matured at {m.cutoff:%Y-%m-%d} ({m.source}{when}, "
            f"{int(m.figures['rows']):,} members): {figures}"
        )


@dataclass(frozen=True)
class MonitorReport:
    """One monitor run: the snapshot checked, the end of the observed data, each champion's
    check and, once written, the HTML report and the MLflow run."""

    as_of: pd.Timestamp
    observed_until: pd.Timestamp
    checks: Mapping[str, ModelCheck]
    report_path: Path | None = None
    run_id: str | None = None
    not_monitored: Mapping[str, str] = field(default_factory=dict)

    @property
    def findings(self) -> list[verdict.Finding]:
        """Every finding, model by model."""
        return [f for check in self.checks.values() for f in check.findings]

    @property
    def drifted(self) -> bool:
        """True when any champion has drifted or decayed."""
        return bool(self.findings)

    def headline(self) -> str:
        """A few readable lines: the verdict, each champion, what to retrain, where to look."""
        state = "DRIFT: retraining recommended" if self.drifted else "stable: nothing to do"
        lines = [
            f"monitor of snapshot {self.as_of:%Y-%m-%d} (outcomes observed until "
            f"{self.observed_until:%Y-%m-%d}): {state}"
        ]
        for check in self.checks.values():
            lines.append("  " + check.line())
            lines += [f"    ! {f.text}" for f in check.findings[:5]]
            if len(check.findings) > 5:
                lines.append(f"    ! ... and {len(check.findings) - 5} more (see the report)")
            if check.drifted:
                lines.append(f"    retrain: {check.retrain}")
        lines += [f"  {name}: not monitored ({why})" for name, why in self.not_monitored.items()]
        if self.report_path is not None:
            lines.append(f"  report: {self.report_path}")
        if self.run_id is not None:
            lines.append(f"  MLflow: run {self.run_id} in experiment memberscore-monitor")
        return "\n".join(lines)
