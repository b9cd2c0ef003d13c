"""Evaluation reports kept as JSON under SHEEN_HOME/evals/<eval_id>.json, for `sheen eval
compare` and for reading back what the eval job recorded."""

from __future__ import annotations

import json
from pathlib import Path

from sheen_pipeline.evals.report import EvalReport

SUITES_DIR = Path("evals")  # the suites, as data, at the top of the checkout


def reports_dir(home: Path) -> Path:
    return home / "evals"


def save_report(home: Path, report: EvalReport) -> Path:
    folder = reports_dir(home)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{report.eval_id}.json"
    path.write_text(json.dumps(report.as_json(), indent=1) + "\n")
    return path


def load_report(home: Path, eval_id: str) -> EvalReport:
    """The report of an earlier evaluation; LookupError naming what is kept when there is none."""
    path = reports_dir(home) / f"{eval_id}.json"
    if "/" in eval_id or not path.is_file():
        kept = sorted(p.stem for p in reports_dir(home).glob("*.json"))
        raise LookupError(f"no evaluation {eval_id} (kept: {', '.join(kept) or 'none'})")
    return EvalReport.from_json(json.loads(path.read_text()))
