"""The accuracy report: figures over a window of decisions, recommendations, and a page to read them on.

`build_report()` reads the decisions and people's feedback through small interfaces, so the command line,
the HTTP function and the tests share it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

from shared.decision import DecisionRecord
from shared.report.figures import Figures, Verdict, compute
from shared.report.recommend import Recommendation, recommend

__all__ = ["Figures", "Report", "Verdict", "build_report"]


@dataclass(frozen=True)
class Report:
    figures: Figures
    recommendations: list[Recommendation]
    generated: datetime

    def to_json(self) -> str:
        from shared.report.page import to_json

        return to_json(self.figures, self.recommendations)

    def to_html(self) -> str:
        from shared.report.page import to_html

        return to_html(self.figures, self.recommendations, generated=self.generated)


def build_report(decisions: Callable[[datetime], Iterable[DecisionRecord]],
                 feedback: Callable[[datetime], Iterable[Verdict]], *, since: datetime, until: datetime,
                 unsure_below: float, max_retries: int) -> Report:
    """The report of decisions received in [since, until): figures and recommendations."""
    figures = compute(decisions(since), feedback(since), since=since, until=until, unsure_below=unsure_below)
    return Report(figures, recommend(figures, max_retries=max_retries), generated=until)
