"""Evaluation reports: our numbers beside the paper's, as JSON and as a markdown table."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional


@dataclass
class ResultRow:
    """One reported number. `paper` is None where the paper gives none; values are percentages or raw."""

    metric: str
    setting: str
    ours: float
    paper: Optional[float] = None
    note: str = ""


@dataclass
class EvaluationReport:
    system: str
    dataset: str  # e.g. "demo youtubers (synthetic)": what *our* numbers were measured on
    paper_dataset: str  # e.g. "real Youtubers, 10 identities"
    rows: list[ResultRow] = field(default_factory=list)
    details: dict = field(default_factory=dict)

    def extend(self, other: "EvaluationReport") -> None:
        self.rows += other.rows
        self.details.update(other.details)

    def markdown(self) -> str:
        lines = [f"# {self.system}: evaluation", "",
                 f"| metric | setting | paper ({self.paper_dataset}) | ours ({self.dataset}) | note |",
                 "|---|---|---|---|---|"]
        for row in self.rows:
            paper = "—" if row.paper is None else f"{row.paper:.2f}"
            lines.append(f"| {row.metric} | {row.setting} | {paper} | {row.ours:.2f} | {row.note} |")
        lines += ["", "Paper numbers were measured on the paper's data and models; ours on the dataset named in the "
                  "header. They are comparable only when that dataset is the paper's."]
        return "\n".join(lines) + "\n"

    def write(self, folder: Path) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        metrics, table = folder / "metrics.json", folder / "results.md"
        metrics.write_text(json.dumps(asdict(self), indent=1) + "\n")
        table.write_text(self.markdown())
        return metrics, table
