"""The harness of the workloads that pit whole tools against each other, not queues.

The queue workloads (:mod:`ringq.bench.workloads`) run every queue kind through the
same job. The *contests* compare a ringq tool with what people use instead, each
side with its own code: ``BoundedExecutor`` against ``ThreadPoolExecutor``
(:mod:`ringq.bench.toolkit`), ``ProcessQueue`` against ``multiprocessing.Queue``
(:mod:`ringq.bench.process`), ``ProcessExecutor`` against ``ProcessPoolExecutor``
(:mod:`ringq.bench.process_pool`), the async toolkit against asyncio by hand and
aiolimiter (:mod:`ringq.bench.async_toolkit`). A group module lists its contests in
``CONTESTS = contest_table(...)``; :mod:`ringq.bench.registry` merges them and
``python -m ringq bench --workload NAME`` runs them through :func:`main`. None is in
the default run.

Method, the same for every contest: each contender runs once, unrecorded, at a
fiftieth of the size (imports, caches); then every round runs every contender once,
in an order rotated by one per round, so that a burst of machine noise hits them
alike; ``gc.collect()`` runs before each run, outside it. A figure is the median of
the rounds (at least :data:`MIN_ROUNDS`); its spread is half the range of the rounds
over the median, and a row whose spread is above :data:`NOISY_SPREAD` is marked
:data:`NOISY_MARK`. A ratio is "times better" (above 1.00x the row wins), between two
medians of the same run. Every run checks its own results and raises
:class:`ContestError` when they are wrong; the workload is then FAILED and the exit
status 1.
"""
from __future__ import annotations

import gc
import json
import statistics
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Optional, Sequence, TextIO, Tuple

from .workloads import Metric

__all__ = [
    "MIN_ROUNDS",
    "NOISY_MARK",
    "NOISY_SPREAD",
    "Contender",
    "Contest",
    "ContestError",
    "ContestRun",
    "check",
    "contest_table",
    "main",
    "report",
    "run_contest",
    "to_json",
]

#: Fewer rounds than this make a median meaningless on a noisy machine.
MIN_ROUNDS = 5
#: A row whose spread (half the range of its rounds, relative to the median) is above
#: this is flagged: its rounds disagree too much to trust the median alone.
NOISY_SPREAD = 0.20
#: The mark of a noisy row, after its spread.
NOISY_MARK = "!"
#: The unrecorded warm-up run's size, as a fraction of the measured size.
WARMUP_DIVISOR = 50


class ContestError(AssertionError):
    """A run returned wrong results (lost items, a wrong sum), or could not run."""


def check(condition: bool, message: str) -> None:
    """Raise :class:`ContestError` with *message* unless *condition* holds."""
    if not condition:
        raise ContestError(message)


def _nothing_missing() -> Optional[str]:
    return None


@dataclass(frozen=True)
class Contender:
    """One side of a contest: a name and a run of a given size that returns its figures."""

    name: str
    #: size -> {metric key: value, ...}; checks its results (ContestError otherwise).
    run: Callable[[int], Dict[str, float]]
    #: The contenders this one's ratios are taken against ("times better than them").
    versus: Tuple[str, ...] = ()
    #: None when the contender can run here; else why not and how to fix it.
    missing: Callable[[], Optional[str]] = _nothing_missing


@dataclass(frozen=True)
class Contest:
    """A workload of contenders, as the runner and the registry see it."""

    name: str
    #: The name that runs this contest with the rest of its group ("toolkit", "process"...).
    group: str
    #: What one run does; ``{size}`` is replaced by the size (thousands-separated).
    summary: str
    #: The figures of each run; the first is the one the target is judged on.
    metrics: Tuple[Metric, ...]
    default_size: int
    quick_size: int
    entries: Tuple[Contender, ...]
    #: The target for the first entry's ratio against its first ``versus``; None: none.
    target: Optional[float] = None
    target_text: str = ""
    #: Contests run only when named (the queue workloads' default run stays short).
    in_default_run: bool = False

    def describe(self, size: int) -> str:
        return self.summary.format(size=f"{size:,}")

    def size(self, quick: bool) -> int:
        return self.quick_size if quick else self.default_size


def contest_table(*contests: Contest) -> Dict[str, Contest]:
    """A group's ``CONTESTS`` dict, name -> contest, in the order given."""
    table: Dict[str, Contest] = {}
    for contest in contests:
        if contest.name in table:
            raise ValueError(f"contest {contest.name!r} is listed twice")
        names = [entry.name for entry in contest.entries]
        if len(set(names)) != len(names):
            raise ValueError(f"contest {contest.name!r} names a contender twice: {names}")
        unknown = [v for entry in contest.entries for v in entry.versus if v not in names]
        if unknown:
            raise ValueError(f"contest {contest.name!r}: versus names no contender of it: {unknown}")
        table[contest.name] = contest
    return table


# --- running ----------------------------------------------------------------------------


@dataclass
class ContestRun:
    """Every contender's figures in one contest."""

    contest: Contest
    size: int
    #: The contenders that ran (the others are in ``skipped``), in the contest's order.
    entries: List[Contender]
    rounds: Dict[str, List[Dict[str, float]]] = field(default_factory=dict)
    orders: List[List[str]] = field(default_factory=list)
    #: Contender name -> why it did not run (not installed...).
    skipped: Dict[str, str] = field(default_factory=dict)
    error: Optional[str] = None

    def values(self, entry: str, key: str) -> List[float]:
        return [figures[key] for figures in self.rounds.get(entry, []) if key in figures]

    def median(self, entry: str, key: str) -> Optional[float]:
        values = self.values(entry, key)
        return statistics.median(values) if values else None

    def spread(self, entry: str, key: str) -> Optional[float]:
        values = self.values(entry, key)
        middle = self.median(entry, key)
        if not values or not middle:
            return None
        return (max(values) - min(values)) / 2 / middle

    def noisy(self, entry: str) -> bool:
        return any((self.spread(entry, metric.key) or 0.0) > NOISY_SPREAD for metric in self.contest.metrics)

    def ratio(self, entry: str, versus: str, metric: Metric) -> Optional[float]:
        """How many times better *entry* is than *versus* on *metric* (medians)."""
        if self.error:
            return None
        mine, theirs = self.median(entry, metric.key), self.median(versus, metric.key)
        if not mine or not theirs:
            return None
        return mine / theirs if metric.higher_is_better else theirs / mine


def run_contest(contest: Contest, size: int, rounds: int, progress: Optional[TextIO] = None,
                entries: Optional[Sequence[Contender]] = None) -> ContestRun:
    """Warm up, then *rounds* rounds of every available contender, the order rotated per round.

    *entries* replaces the contest's contenders (a script running them on another loop).
    """
    if rounds < MIN_ROUNDS:
        raise ValueError(f"rounds={rounds} is below the minimum of {MIN_ROUNDS}: a median of fewer "
                         "rounds is not a steady figure")
    candidates = list(contest.entries if entries is None else entries)
    result = ContestRun(contest, size, [])
    for entry in candidates:
        reason = entry.missing()
        if reason is None:
            result.entries.append(entry)
        else:
            result.skipped[entry.name] = reason
            if progress is not None:
                progress.write(f"{contest.name}: skipping {entry.name}: {reason}\n")
    result.rounds = {entry.name: [] for entry in result.entries}
    ready = result.entries
    if not ready:
        return result
    try:
        for entry in ready:
            entry.run(max(1, size // WARMUP_DIVISOR))
        for index in range(rounds):
            shift = index % len(ready)
            order = ready[shift:] + ready[:shift]
            result.orders.append([entry.name for entry in order])
            for entry in order:
                gc.collect()  # outside the run: the previous run's garbage is collected now
                result.rounds[entry.name].append(entry.run(size))
            if progress is not None:
                progress.write(f"  {contest.name} round {index + 1}/{rounds}: " + "; ".join(
                    f"{entry.name} {_compact(result.rounds[entry.name][-1], contest.metrics[0])}"
                    for entry in ready) + "\n")
                progress.flush()
    except (ContestError, RuntimeError, OSError) as exc:
        result.error = f"{type(exc).__name__}: {exc}"
    return result


def _compact(figures: Dict[str, float], metric: Metric) -> str:
    value = figures.get(metric.key)
    return "?" if value is None else f"{value:.4g} {metric.label}"


# --- reporting --------------------------------------------------------------------------


def _ratios(run: ContestRun, entry: Contender) -> str:
    metrics = run.contest.metrics
    parts = []
    for metric in metrics:
        for versus in entry.versus:
            ratio = run.ratio(entry.name, versus, metric)
            if ratio is not None:
                label = f"{metric.label} " if len(metrics) > 1 else ""
                parts.append(f"{label}{ratio:.2f}x {versus}")
    return ", ".join(parts)


def _spread_cell(spread: Optional[float]) -> str:
    if spread is None:
        return "n/a"
    return f"±{spread * 100:.1f}%" + (f" {NOISY_MARK}" if spread > NOISY_SPREAD else "  ")


def report(runs: Sequence[ContestRun], rounds: int) -> str:
    """The tables of *runs*, as text."""
    import ringq

    lines = [
        f"ringq {ringq.__version__} contests (ringq.IMPLEMENTATION = {ringq.IMPLEMENTATION!r}), "
        f"Python {sys.version.split()[0]}",
        f"Medians of {rounds} rounds, contenders interleaved (order rotated per round); "
        "ratio = times better than the contender named (above 1.00x the row wins); "
        "spread = half the range of the rounds.",
    ]
    noisy: List[str] = []
    for run in runs:
        contest = run.contest
        lines.append("")
        lines.append(f"{contest.name}: {contest.describe(run.size)}")
        reasons = set(run.skipped.values())
        if not run.entries and len(reasons) == 1:
            lines.append(f"  skipped: {reasons.pop()}")
        else:
            lines.extend(f"  skipped {name}: {reason}" for name, reason in run.skipped.items())
        if run.error:
            lines.append(f"  FAILED: {run.error}")
            continue
        if not run.entries:
            continue
        header = ["contender"]
        for metric in contest.metrics:
            header += [metric.label, "spread"]
        header.append("ratios")
        rows = [header]
        for entry in run.entries:
            row = [entry.name]
            for metric in contest.metrics:
                value = run.median(entry.name, metric.key)
                row += ["n/a" if value is None else metric.fmt.format(value),
                        _spread_cell(run.spread(entry.name, metric.key))]
            row.append(_ratios(run, entry))
            rows.append(row)
            if run.noisy(entry.name):
                noisy.append(f"{contest.name}/{entry.name}")
        widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
        for row in rows:
            lines.append("  " + "  ".join(
                cell.ljust(widths[i]) if i in (0, len(header) - 1) else cell.rjust(widths[i])
                for i, cell in enumerate(row)).rstrip())
        first = next((e for e in run.entries if e.name == contest.entries[0].name), None)
        if contest.target is not None and first is not None and first.versus:
            ratio = run.ratio(first.name, first.versus[0], contest.metrics[0])
            verdict = "n/a" if ratio is None else f"{ratio:.2f}x, " + (
                "met" if ratio >= contest.target else "MISSED")
            lines.append(f"  target {contest.target_text}: {verdict}")
        elif contest.target_text:
            lines.append(f"  target: {contest.target_text}")
    if noisy:
        lines.append("")
        lines.append(f"{NOISY_MARK} {len(noisy)} row(s) with a spread above {NOISY_SPREAD:.0%} (marked "
                     f"{NOISY_MARK}): their rounds disagree, so read those medians as rough. For a "
                     f"steadier figure: a quiet machine, more rounds (--rounds {3 * MIN_ROUNDS}).")
        lines.append("  Noisy rows: " + ", ".join(noisy))
    return "\n".join(lines)


def to_json(runs: Sequence[ContestRun], rounds: int) -> Dict[str, Any]:
    """Every raw round, the medians and the ratios, machine-readable."""
    import ringq

    return {
        "format": "ringq-bench-contest/1",
        "ringq": {"version": ringq.__version__, "implementation": ringq.IMPLEMENTATION},
        "python": sys.version,
        "rounds": rounds,
        "noisy_spread": NOISY_SPREAD,
        "workloads": {
            run.contest.name: {
                "description": run.contest.describe(run.size),
                "size": run.size, "error": run.error, "orders": run.orders, "skipped": run.skipped,
                "metrics": [{"key": m.key, "label": m.label, "higher_is_better": m.higher_is_better}
                            for m in run.contest.metrics],
                "entries": {
                    e.name: {"rounds": run.rounds[e.name],
                             "median": {m.key: run.median(e.name, m.key) for m in run.contest.metrics},
                             "spread": {m.key: run.spread(e.name, m.key) for m in run.contest.metrics},
                             "noisy": run.noisy(e.name),
                             "ratios": {v: {m.key: run.ratio(e.name, v, m) for m in run.contest.metrics}
                                        for v in e.versus}}
                    for e in run.entries},
            } for run in runs},
    }


def main(contests: Sequence[Contest], rounds: int, quick: bool, stdout: TextIO, stderr: TextIO,
         json_path: Optional[str] = None) -> int:
    """Run *contests*, print the report (stderr when the JSON goes to stdout); 0, or 1 if one failed."""
    runs = []
    try:
        for contest in contests:
            size = contest.size(quick)
            stderr.write(f"{contest.name}: {len(contest.entries)} contenders x {rounds} rounds, "
                         f"{contest.describe(size)}\n")
            stderr.flush()
            runs.append(run_contest(contest, size, rounds, stderr))
    except KeyboardInterrupt:
        stderr.write("\nringq bench: interrupted\n")
        return 130
    text = report(runs, rounds)
    if json_path == "-":
        json.dump(to_json(runs, rounds), stdout, indent=2)
        stdout.write("\n")
        stderr.write(text + "\n")
    else:
        stdout.write(text + "\n")
        if json_path:
            with open(json_path, "w", encoding="utf-8") as out:
                json.dump(to_json(runs, rounds), out, indent=2)
                out.write("\n")
    failed = [run.contest.name for run in runs if run.error]
    if failed:
        stderr.write(f"ringq bench: FAILED: {', '.join(failed)}\n")
        return 1
    return 0
