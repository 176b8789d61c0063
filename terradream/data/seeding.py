"""Seeding (mapproxy-seed style): make every tile of a region cached, resumably, and report what happened."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from tqdm import tqdm

from terradream.core.keys import TileKey
from terradream.data.sources import TileOutcome, TileSource

MAX_LISTED_FAILURES = 1000


@dataclass
class RunReport:
    """Counts of one seed or export run, filled in as tiles complete (so an interrupted run still has its numbers)."""

    total: int
    cached: int = 0
    rendered: int = 0
    failures: list[TileOutcome] = field(default_factory=list)
    generated: int | None = None  # tiles the model made, parents included (in-process only)
    started_s: float = field(default_factory=time.monotonic)
    elapsed_s: float = 0.0

    @property
    def done(self) -> int:
        """Tiles finished so far, failed ones included."""
        return self.cached + self.rendered + len(self.failures)

    def record(self, outcome: TileOutcome) -> None:
        """Count one finished tile."""
        if outcome.error is not None:
            self.failures.append(outcome)
        elif outcome.cached:
            self.cached += 1
        else:
            self.rendered += 1
        self.elapsed_s = time.monotonic() - self.started_s

    def summary(self) -> str:
        """One line: how many tiles were cached already, rendered now, and failed, in how long."""
        line = (f"{self.done} of {self.total} tiles in {self.elapsed_s:.1f} s: {self.cached} already cached, "
                f"{self.rendered} rendered, {len(self.failures)} failed")
        if self.generated is not None:
            line += f"; the model generated {self.generated} tiles (parents included)"
        return line

    def failure_lines(self, limit: int = MAX_LISTED_FAILURES) -> list[str]:
        """One line per failed tile (world/z/x/y and why), at most limit of them and then how many more."""
        lines = [f"  {o.key.world}/{o.key.z}/{o.key.x}/{o.key.y}: {o.error}" for o in self.failures[:limit]]
        if len(self.failures) > limit:
            lines.append(f"  ... and {len(self.failures) - limit} more")
        return lines


def run_tracked(source: TileSource, keys: Iterable[TileKey], report: RunReport, progress: tqdm,
                sink: Callable[[TileOutcome], None] | None = None) -> RunReport:
    """Run keys through source, counting each outcome in report and progress and handing it to sink (if any)."""
    before = source.generated

    def on_outcome(outcome: TileOutcome) -> None:
        if sink is not None:
            sink(outcome)
        report.record(outcome)
        progress.update(1)
        if before is not None:
            report.generated = (source.generated or 0) - before

    try:
        source.run(keys, on_outcome)
    finally:
        report.elapsed_s = time.monotonic() - report.started_s
    return report


def within_budget(keys: Iterable[TileKey], budget_s: float | None) -> Iterator[TileKey]:
    """keys until budget_s seconds have passed since the first was taken (all of them when None).

    Sources take keys lazily, so only the tiles already in flight (a batch, or one per HTTP worker) finish late.
    """
    deadline = None if budget_s is None else time.monotonic() + budget_s
    for key in keys:
        if deadline is not None and time.monotonic() >= deadline:
            return
        yield key


def seed(source: TileSource, keys: Iterable[TileKey], report: RunReport, progress: tqdm,
         budget_s: float | None = None) -> RunReport:
    """Make every key cached through source, stopping after budget_s seconds if given: cached tiles are only read,
    so an interrupted or time-boxed run resumes where it stopped."""
    return run_tracked(source, within_budget(keys, budget_s), report, progress)
