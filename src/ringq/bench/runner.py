"""``python -m ringq bench``: run the workloads, report medians and ratios.

Method. Every workload runs for ``--rounds`` rounds (at least 5). In round ``r``
every queue runs the workload once, in an order rotated by ``r`` places, so that a
burst of machine noise hits all queues alike rather than always the same one. The
figure reported for a queue is the median of its rounds; the spread column shows
half the range (max - min) of those rounds relative to the median. Before round
1, each queue runs the workload once at a small size, unrecorded (imports, caches,
first-touch allocations). ``gc.collect()`` runs before every measured run, outside
the measurement, so one queue's garbage is not collected on another's time (the
objects alive at the start are frozen with ``gc.freeze()`` so that it stays quick).

Ratios are "times better than the reference": the reference's figure divided by
the queue's for latency and bytes, the queue's divided by the reference's for
throughput. Above 1 the queue beats the reference; the references are
``queue.Queue`` and ``queue.SimpleQueue``.

Outputs: the table on stdout, progress on stderr, ``--json PATH`` (every raw round
value, the medians, the ratios, the machine, a timestamp; ``--json -`` writes it to
stdout and moves the table to stderr), ``--plot PATH.png`` (bars of the ratios
against both references with the rounds' range as error bars, needs matplotlib:
``pip install 'ringq[plot]'``). A row whose spread is above 20% is flagged with
``!`` and the footer says how to get a steadier figure.
Exit status: 0 on success, 1 when a workload failed (lost items, a hang, an
exception: the table marks it FAILED), 2 on a usage error.
"""
from __future__ import annotations

import argparse
import datetime
import gc
import importlib
import importlib.util
import json
import math
import os
import statistics
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, TextIO, Tuple

from .contest import MIN_ROUNDS, NOISY_MARK, NOISY_SPREAD
from .contest import main as run_contests
from .machine import describe_environment, header_lines
from .peers import REFERENCE, SIMPLE_REFERENCE, QueueKind, available_queue_kinds, missing_optional_peers
from .registry import ALIASES, CONTESTS, WORKLOADS
from .workloads import DEFAULT_TIMEOUT, Metric, WorkloadError, WorkloadSpec

__all__ = [
    "MIN_ROUNDS",
    "NOISY_SPREAD",
    "BenchConfig",
    "EntryResult",
    "WorkloadResult",
    "add_bench_arguments",
    "main",
    "run_benchmarks",
]

#: Size of the unrecorded warm-up run, as a fraction of the measured size.
WARMUP_FRACTION = 0.02


# --- configuration ---------------------------------------------------------------


@dataclass
class BenchConfig:
    """What to run: workloads in order, sizes, rounds, per-run timeout."""

    workloads: List[str]
    rounds: int = MIN_ROUNDS
    quick: bool = False
    timeout: float = DEFAULT_TIMEOUT

    def size_of(self, spec: WorkloadSpec) -> int:
        return spec.quick_size if self.quick else spec.default_size


# --- results ---------------------------------------------------------------------


@dataclass
class EntryResult:
    """One queue's figures in one workload."""

    queue: str
    size: int
    batch_method: str
    #: False when this queue's figures must not be compared with the others'
    #: (memory held outside tracemalloc's view): its ratios are then n/a.
    comparable: bool = True
    #: The queue's caveat, printed under the results.
    note: str = ""
    #: Raw figures of every recorded round, in round order.
    rounds: List[Dict[str, float]] = field(default_factory=list)
    error: Optional[str] = None

    def median(self, key: str) -> Optional[float]:
        values = [figures[key] for figures in self.rounds if key in figures]
        return statistics.median(values) if values else None

    def spread(self, key: str) -> Optional[float]:
        """Half the range of the rounds, relative to the median."""
        values = [figures[key] for figures in self.rounds if key in figures]
        middle = self.median(key)
        if not values or not middle:
            return None
        return (max(values) - min(values)) / 2 / middle


@dataclass
class WorkloadResult:
    """Every queue's figures in one workload, plus the order each round ran in."""

    spec: WorkloadSpec
    size: int
    entries: List[EntryResult]
    round_orders: List[List[str]] = field(default_factory=list)

    def entry(self, queue: str) -> Optional[EntryResult]:
        return next((entry for entry in self.entries if entry.queue == queue), None)

    def ratio(self, queue: str, reference: str, metric: Metric) -> Optional[float]:
        """How many times better *queue* is than *reference* on *metric* (medians)."""
        mine = self.entry(queue)
        theirs = self.entry(reference)
        if mine is None or theirs is None or mine.error or theirs.error:
            return None
        if not (mine.comparable and theirs.comparable):
            return None
        value, ref_value = mine.median(metric.key), theirs.median(metric.key)
        if value is None or ref_value is None:
            return None
        numerator, denominator = (value, ref_value) if metric.higher_is_better else (ref_value, value)
        if denominator == 0:
            return None
        return numerator / denominator


# --- progress --------------------------------------------------------------------


class Progress:
    """One stderr line per workload round, extended as each queue finishes."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self._started

    def line(self, text: str) -> None:
        self._stream.write(f"[{self.elapsed():6.1f}s] {text}\n")
        self._stream.flush()

    def start(self, text: str) -> None:
        self._stream.write(f"[{self.elapsed():6.1f}s] {text}")
        self._stream.flush()

    def more(self, text: str) -> None:
        self._stream.write(text)
        self._stream.flush()

    def end(self) -> None:
        self._stream.write("\n")
        self._stream.flush()


def _compact(metric: Metric, value: float) -> str:
    """A short rendering of a figure for the progress line."""
    if metric.key == "items_per_s":
        if value >= 1e6:
            return f"{value / 1e6:.2f}M/s"
        return f"{value / 1e3:.0f}k/s"
    if metric.key == "us_per_round_trip":
        return f"{value:.1f}us"
    return f"{value:,.0f}B"


# --- running ---------------------------------------------------------------------


def _run_once(spec: WorkloadSpec, kind: QueueKind, size: int, timeout: float) -> Dict[str, float]:
    trial = spec.prepare(kind, size, timeout)
    gc.collect()  # outside the measurement: collect the previous run's garbage now
    seconds = trial.run()
    trial.verify()
    return trial.figures(seconds)


def run_workload(spec: WorkloadSpec, kinds: Sequence[QueueKind], config: BenchConfig,
                 progress: Progress) -> WorkloadResult:
    """Warm up, then run every queue once per round, rotating the order each round."""
    size = config.size_of(spec)
    entries_kinds = spec.entries(kinds)
    result = WorkloadResult(spec, size, [
        EntryResult(kind.name, spec.size_for(kind, size), kind.batch_method,
                    comparable=kind.memory_traced or not spec.measures_memory, note=kind.note)
        for kind in entries_kinds
    ])
    by_name = {kind.name: kind for kind in entries_kinds}

    progress.start(f"{spec.name:<9} warm-up:")
    for kind, entry in zip(entries_kinds, result.entries):
        warmup_size = max(1, int(entry.size * WARMUP_FRACTION))
        try:
            _run_once(spec, kind, warmup_size, config.timeout)
            progress.more(" .")
        except WorkloadError as exc:
            entry.error = str(exc)
            progress.more(f" {kind.name} FAILED")
    progress.end()

    count = len(entries_kinds)
    for round_index in range(config.rounds):
        shift = round_index % count if count else 0
        order = result.entries[shift:] + result.entries[:shift]
        result.round_orders.append([entry.queue for entry in order])
        progress.start(f"{spec.name:<9} round {round_index + 1}/{config.rounds}:")
        for entry in order:
            if entry.error:
                continue  # a queue that failed once is not measured again
            try:
                figures = _run_once(spec, by_name[entry.queue], entry.size, config.timeout)
            except WorkloadError as exc:
                entry.error = str(exc)
                progress.more(f" {entry.queue} FAILED;")
                continue
            entry.rounds.append(figures)
            shown = " ".join(_compact(metric, figures[metric.key]) for metric in spec.metrics)
            progress.more(f" {entry.queue} {shown};")
        progress.end()
    for entry in result.entries:
        if entry.error:
            progress.line(f"ERROR {spec.name}: {entry.error}")
    return result


def run_benchmarks(config: BenchConfig, progress: Progress,
                   kinds: Optional[Sequence[QueueKind]] = None) -> List[WorkloadResult]:
    """Run every configured workload over *kinds* (default: every available queue)."""
    kinds = list(kinds) if kinds is not None else available_queue_kinds()
    # Everything alive now (modules, peers' imports) moves to the permanent
    # generation: the gc.collect() before each run then scans only the objects
    # the benchmarks made, which keeps those collections short.
    freeze = getattr(gc, "freeze", None)  # CPython >= 3.7; not on PyPy
    gc.collect()
    if freeze is not None:
        freeze()
    try:
        return [run_workload(WORKLOADS[name], kinds, config, progress) for name in config.workloads]
    finally:
        if freeze is not None:
            gc.unfreeze()


# --- reporting -------------------------------------------------------------------


def _fmt_ratio(ratio: Optional[float]) -> str:
    if ratio is None:
        return "n/a"
    return f"{ratio:.2f}x" if ratio < 100 else f"{ratio:,.0f}x"


def _fmt_spread(spread: Optional[float]) -> str:
    if spread is None:
        return "n/a"
    mark = f" {NOISY_MARK}" if spread > NOISY_SPREAD else "  "
    return f"±{spread * 100:.1f}%{mark}"


def noisy_rows(results: Sequence[WorkloadResult]) -> List[str]:
    """``workload/queue`` of every row whose spread is above NOISY_SPREAD."""
    return [f"{result.spec.name}/{entry.queue}" for result in results for entry in result.entries
            for metric in result.spec.metrics
            if not entry.error and (entry.spread(metric.key) or 0.0) > NOISY_SPREAD]


def _table(result: WorkloadResult, metric: Metric) -> List[str]:
    """The rows of one metric of one workload, as aligned text."""
    reference = result.spec.reference
    # Workloads with their own contenders (priority, broadcast) have no SimpleQueue row.
    show_simple = result.entry(SIMPLE_REFERENCE) is not None
    header = ["queue", metric.label, f"vs {reference}", f"vs {SIMPLE_REFERENCE}", "spread"]
    if not show_simple:
        del header[3]
    show_method = result.spec.uses_batch_method
    if show_method:
        header.insert(1, "method")
    rows: List[List[str]] = []
    for entry in result.entries:
        name = entry.queue + ("*" if entry.size != result.size else "")
        if entry.error:
            row = [name, "FAILED", "", "", ""]
        else:
            median = entry.median(metric.key)
            row = [name, metric.fmt.format(median) if median is not None else "n/a",
                   _fmt_ratio(result.ratio(entry.queue, reference, metric)),
                   _fmt_ratio(result.ratio(entry.queue, SIMPLE_REFERENCE, metric)),
                   _fmt_spread(entry.spread(metric.key))]
        if not show_simple:
            del row[3]
        if show_method:
            row.insert(1, entry.batch_method)
        rows.append(row)
    widths = [max(len(line[i]) for line in [header] + rows) for i in range(len(header))]
    # The first column(s) are names: left-aligned; figures are right-aligned.
    text_columns = 2 if show_method else 1

    def render(line: List[str]) -> str:
        cells = [cell.ljust(widths[i]) if i < text_columns else cell.rjust(widths[i])
                 for i, cell in enumerate(line)]
        return "  " + "  ".join(cells).rstrip()

    return [render(header)] + [render(row) for row in rows]


def report(results: Sequence[WorkloadResult], environment: Dict[str, Any], config: BenchConfig,
           total_seconds: float, missing: Dict[str, str]) -> str:
    """The full human-readable report."""
    lines = header_lines(environment)
    if config.quick:
        lines.append("Mode: QUICK (--quick): smaller sizes, rougher figures; run without "
                     "--quick for figures to quote.")
    lines.append(
        f"Method: each figure is the median of {config.rounds} rounds; each round runs every "
        "queue once, in an order rotated per round; spread = half the range of the rounds.")
    lines.append("Ratios: times better than the reference (faster, lower latency or fewer "
                 "bytes); above 1.00x the queue beats it.")
    if missing:
        lines.append("Peers not installed (pip install 'ringq[bench]'): " + ", ".join(sorted(missing)))
    notes: Dict[str, str] = {}
    for result in results:
        lines.append("")
        lines.append(f"{result.spec.name}: {result.spec.describe(result.size)}")
        for metric in result.spec.metrics:
            if len(result.spec.metrics) > 1:
                lines.append(f" {metric.label}:")
            lines.extend(_table(result, metric))
        scaled = [entry for entry in result.entries if entry.size != result.size]
        for entry in scaled:
            per = result.spec.size_unit[:-1] if result.spec.size_unit.endswith("s") else "run"
            lines.append(f"  * {entry.queue} ran {entry.size:,} {result.spec.size_unit}, not "
                         f"{result.size:,}, to keep the run under a minute (figures are per {per}, "
                         "so they stay comparable)")
        if result.spec.uses_batch_method:
            lines.extend(_batch_summary(result))
        for entry in result.entries:
            if not entry.comparable:
                lines.append(f"  {entry.queue}: no ratios, its storage is invisible to tracemalloc")
            if entry.note:
                notes[entry.queue] = entry.note
            if entry.error:
                lines.append(f"  FAILED {entry.queue}: {entry.error}")
    if notes:
        lines.append("")
        lines.append("Notes:")
        lines.extend(f"  - {note}" for note in notes.values())
    noisy = noisy_rows(results)
    if noisy:
        lines.append("")
        lines.append(f"{NOISY_MARK} {len(noisy)} row(s) with a spread above {NOISY_SPREAD:.0%} (marked "
                     f"{NOISY_MARK}): their rounds disagree, so read those medians as rough.")
        lines.append("  For a steadier figure: run on a quiet machine (close other heavy programs; "
                     "a laptop plugged in),")
        lines.append(f"  with more rounds (--rounds {3 * MIN_ROUNDS}), and compare several runs "
                     "rather than trusting one.")
        lines.append("  Noisy rows: " + ", ".join(noisy))
    lines.append("")
    lines.append(f"Total time: {total_seconds:.1f} s")
    return "\n".join(lines)


def _batch_summary(result: WorkloadResult) -> List[str]:
    metric = result.spec.metrics[0]
    lines = []
    batch_vs_simple = result.ratio("ringq", SIMPLE_REFERENCE, metric)
    loop_vs_simple = result.ratio("ringq (per-item loop)", SIMPLE_REFERENCE, metric)
    batch_vs_loop = result.ratio("ringq", "ringq (per-item loop)", metric)
    if batch_vs_simple is not None:
        lines.append(f"  ringq put_many/get_many vs queue.SimpleQueue per-item loop: "
                     f"{_fmt_ratio(batch_vs_simple)}")
    if batch_vs_loop is not None and loop_vs_simple is not None:
        lines.append(f"  ringq put_many/get_many vs ringq per-item loop: {_fmt_ratio(batch_vs_loop)}"
                     f" (ringq per-item loop vs queue.SimpleQueue: {_fmt_ratio(loop_vs_simple)})")
    return lines


def to_json(results: Sequence[WorkloadResult], environment: Dict[str, Any], config: BenchConfig,
            total_seconds: float, missing: Dict[str, str],
            timestamp: Optional[str] = None) -> Dict[str, Any]:
    """Everything measured, machine-readable."""
    workloads: Dict[str, Any] = {}
    for result in results:
        entries: Dict[str, Any] = {}
        for entry in result.entries:
            entries[entry.queue] = {
                "size": entry.size,
                **({"batch_method": entry.batch_method} if result.spec.uses_batch_method else {}),
                "error": entry.error,
                "rounds": entry.rounds,
                "median": {metric.key: entry.median(metric.key) for metric in result.spec.metrics},
                "spread": {metric.key: entry.spread(metric.key) for metric in result.spec.metrics},
                "noisy": any((entry.spread(metric.key) or 0.0) > NOISY_SPREAD
                             for metric in result.spec.metrics),
                "ratio_vs_" + result.spec.reference: {
                    metric.key: result.ratio(entry.queue, result.spec.reference, metric)
                    for metric in result.spec.metrics},
                "ratio_vs_" + SIMPLE_REFERENCE: {
                    metric.key: result.ratio(entry.queue, SIMPLE_REFERENCE, metric)
                    for metric in result.spec.metrics},
            }
        workloads[result.spec.name] = {
            "description": result.spec.describe(result.size),
            "reference": result.spec.reference,
            "size": result.size,
            "size_unit": result.spec.size_unit,
            "metrics": [{"key": m.key, "label": m.label, "higher_is_better": m.higher_is_better}
                        for m in result.spec.metrics],
            "round_orders": result.round_orders,
            "entries": entries,
        }
    return {
        "format": "ringq-bench/1",
        # When the run finished, UTC, ISO 8601.
        "timestamp": timestamp or _utc_now(),
        "environment": environment,
        "method": {
            "rounds": config.rounds,
            "quick": config.quick,
            "timeout_s": config.timeout,
            "statistic": "median of rounds",
            "interleaving": "each round runs every queue once; the order rotates by one per round",
            "ratio": "times better than the reference; > 1 beats it",
            "references": [REFERENCE, SIMPLE_REFERENCE],
            "noisy_spread": NOISY_SPREAD,
        },
        "missing_peers": missing,
        "total_seconds": total_seconds,
        "workloads": workloads,
    }


def _utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


# --- plot ------------------------------------------------------------------------


PLOT_HINT = "pip install 'ringq[plot]'"


def plot_available() -> bool:
    return importlib.util.find_spec("matplotlib") is not None


def round_ratios(result: WorkloadResult, queue: str, reference: str, metric: Metric) -> List[float]:
    """The ratio of *queue* to *reference* in each round (both ran in every round, side by side)."""
    mine, theirs = result.entry(queue), result.entry(reference)
    if mine is None or theirs is None or mine.error or theirs.error:
        return []
    if not (mine.comparable and theirs.comparable):
        return []
    ratios = []
    for own, ref in zip(mine.rounds, theirs.rounds):
        value, ref_value = own.get(metric.key), ref.get(metric.key)
        if not value or not ref_value:
            continue
        ratios.append(value / ref_value if metric.higher_is_better else ref_value / value)
    return ratios


def write_plot(results: Sequence[WorkloadResult], environment: Dict[str, Any], path: str,
               rounds: int, missing_peers: Sequence[str] = ()) -> None:
    """Grouped bars of every queue's ratio against both references (log scale).

    Two panels, one per reference (queue.Queue, then queue.SimpleQueue). A bar is the
    ratio of the medians; its error bar spans the lowest to the highest per-round ratio.
    A peer with no figure in a workload (failed, not comparable, or not run there
    although other workloads ran it) gets "n/a" in its slot instead of a bar, so a
    missing peer is never mistaken for a tiny one; a row that belongs to one workload
    only (such as a capacity row) is simply absent elsewhere. Peers that are not
    installed are named in the title.
    """
    # Imported by name: matplotlib is optional, and mypy (checking for Python 3.9)
    # must not follow into its sources.
    matplotlib: Any = importlib.import_module("matplotlib")
    matplotlib.use("Agg")  # files only: never needs a display
    plt: Any = importlib.import_module("matplotlib.pyplot")

    groups: List[Tuple[str, WorkloadResult, Metric]] = []
    for result in results:
        for metric in result.spec.metrics:
            label = result.spec.name if len(result.spec.metrics) == 1 else \
                f"{result.spec.name}\n{metric.label}"
            groups.append((label, result, metric))
    # Slot order: the order of the workload with the most entries (batch lists
    # "ringq (per-item loop)" right after "ringq"), then any other queue.
    queues: List[str] = []
    for result in sorted(results, key=lambda r: -len(r.entries)):
        queues.extend(entry.queue for entry in result.entries if entry.queue not in queues)

    # Queues run by more than one workload are peers: their absence is worth marking.
    peers = {name for name in queues
             if sum(result.entry(name) is not None for result in results) > 1}

    palette = plt.get_cmap("tab10")
    colour = {name: palette(index % 10) for index, name in enumerate(queues)}
    width = 0.8 / max(1, len(queues))
    figure, panels = plt.subplots(2, 1, figsize=(max(8.0, 1.8 * len(groups) + 2), 10.0))
    legend_handles: Dict[str, Any] = {}
    for axes, reference in zip(panels, (REFERENCE, SIMPLE_REFERENCE)):
        missing: List[Tuple[float, str]] = []
        for position, (_, result, metric) in enumerate(groups):
            for index, name in enumerate(queues):
                x = position - 0.4 + width * (index + 0.5)
                ratio = result.ratio(name, reference, metric)
                if ratio is None:  # not run here, failed, or not comparable
                    if result.entry(name) is not None or name in peers:
                        missing.append((x, name))
                    continue
                per_round = round_ratios(result, name, reference, metric)
                low = max(0.0, ratio - min(per_round)) if per_round else 0.0
                high = max(0.0, max(per_round) - ratio) if per_round else 0.0
                bars = axes.bar([x], [ratio], width, color=colour[name],
                                yerr=[[low], [high]], capsize=2, error_kw={"linewidth": 0.8})
                legend_handles.setdefault(name, bars)
                if name == "ringq":
                    text = f"{ratio:.2f}x" if ratio < 10 else f"{ratio:,.0f}x"
                    axes.annotate(text, (x, ratio + high), ha="center", va="bottom", fontsize=7)
        axes.axhline(1.0, color="black", linewidth=0.8)
        axes.set_yscale("log")
        for x, name in missing:
            axes.annotate("n/a", (x, 1.0), ha="center", va="bottom", fontsize=6, rotation=90,
                          color=colour[name])
        axes.set_xticks(range(len(groups)))
        axes.set_xticklabels([label for label, _, _ in groups])
        axes.set_ylabel(f"times better than {reference}\n(log scale; 1 = {reference})")
    machine = environment["machine"]
    python = environment["python"]
    panels[0].set_title(
        f"ringq {environment['ringq']['version']} ({environment['ringq']['implementation']}) vs "
        f"peers: median of {rounds} rounds, error bars = lowest to highest round\n"
        f"Python {python['version']} {python['implementation']}, "
        f"{machine['cpu_model'] or 'unknown CPU'}, {machine['cpu_count']} cores; "
        "n/a = no figure for that queue in that workload"
        + (f"; not installed: {', '.join(sorted(missing_peers))}" if missing_peers else ""),
        fontsize=10)
    names = [name for name in queues if name in legend_handles]
    panels[0].legend([legend_handles[name] for name in names], names, fontsize=8, ncol=2)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


# --- command line ----------------------------------------------------------------


def _workload_names(values: Optional[List[str]]) -> List[str]:
    if not values:
        return [name for name, spec in WORKLOADS.items() if spec.in_default_run]
    names: List[str] = []
    for value in values:
        for name in value.split(","):
            name = name.strip()
            if name and name not in names:
                names.append(name)
    return names


def _rounds(text: str) -> int:
    """argparse type of --rounds: an integer of at least MIN_ROUNDS."""
    try:
        rounds = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None
    if rounds < MIN_ROUNDS:
        raise argparse.ArgumentTypeError(
            f"{rounds} is below the minimum of {MIN_ROUNDS}: a median of fewer rounds is not "
            "a steady figure")
    return rounds


def add_bench_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the options of ``python -m ringq bench``."""
    workloads = ", ".join(f"{spec.name} ({spec.describe(spec.default_size)})"
                          + ("" if spec.in_default_run else " [only when named]")
                          for spec in WORKLOADS.values())
    contests = "; ".join(
        f"{alias} for all of " + ", ".join(f"{name} ({CONTESTS[name].describe(CONTESTS[name].default_size)})"
                                          for name in members)
        for alias, members in ALIASES.items())
    parser.add_argument(
        "--quick", action="store_true",
        help="smaller sizes (fewer items, round trips and queues) for a run of a few "
             f"seconds; still at least {MIN_ROUNDS} rounds")
    parser.add_argument(
        "--workload", action="append", metavar="NAME",
        help=f"run only this workload; repeatable or a comma-separated list. Names: {workloads}. "
             "Default: all but those marked [only when named], in that order. The "
             "contests (a ringq tool against what people use instead) run on their own, also "
             f"only when named, each by its name or with its group: {contests}")
    parser.add_argument(
        "--rounds", type=_rounds, default=MIN_ROUNDS, metavar="N",
        help=f"rounds per workload (default and minimum {MIN_ROUNDS}; fewer is an error); "
             "every figure is the median of the rounds. More rounds give steadier figures")
    parser.add_argument(
        "--json", metavar="PATH",
        help="also write every raw round value, the medians, the ratios, the machine "
             "description and a timestamp to PATH as JSON; '-' writes the JSON to stdout "
             "(the table then goes to stderr)")
    parser.add_argument(
        "--plot", metavar="PATH.png",
        help=f"also draw a bar chart of the ratios against {REFERENCE} and {SIMPLE_REFERENCE}, "
             f"with the spread of the rounds as error bars, to PATH.png (needs matplotlib: {PLOT_HINT})")
    parser.add_argument(
        "--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
        help="seconds one run may take before its threads count as hung and the workload "
             f"fails (default {DEFAULT_TIMEOUT:g})")


def main(args: argparse.Namespace, stdout: Optional[TextIO] = None,
         stderr: Optional[TextIO] = None) -> int:
    """Run ``python -m ringq bench`` with parsed *args*; returns the exit status."""
    # Looked up at call time, so a redirected sys.stdout/sys.stderr is honoured.
    stdout = stdout if stdout is not None else sys.stdout
    stderr = stderr if stderr is not None else sys.stderr
    names = _workload_names(args.workload)
    # A contest group's name ("toolkit", "process", "processes", "async") runs all its contests.
    for alias, members in ALIASES.items():
        if alias in names:
            at = names.index(alias)
            names[at:at + 1] = [name for name in members if name not in names]
    contest_names = [name for name in names if name in CONTESTS]
    names = [name for name in names if name not in CONTESTS]
    unknown = [name for name in names if name not in WORKLOADS]
    if unknown:
        stderr.write(f"ringq bench: unknown workload {', '.join(unknown)}; "
                     f"choose from {', '.join(WORKLOADS)}, "
                     f"{', '.join(list(CONTESTS) + list(ALIASES))}\n")
        return 2
    rounds = args.rounds
    if rounds < MIN_ROUNDS:  # the parser refuses it; this guards callers that build args
        stderr.write(f"ringq bench: --rounds must be at least {MIN_ROUNDS}, not {rounds}\n")
        return 2
    if not (args.timeout > 0 and math.isfinite(args.timeout)):
        stderr.write("ringq bench: --timeout must be a positive number of seconds\n")
        return 2
    json_to_stdout = args.json == "-"
    for option, path in (("--json", args.json), ("--plot", args.plot)):
        # Checked up front, like matplotlib below: fail before the minute of work.
        if option == "--json" and json_to_stdout:
            continue
        if path and not os.path.isdir(os.path.dirname(os.path.abspath(path))):
            stderr.write(f"ringq bench: {option} {path}: no such directory\n")
            return 2
    if args.plot and not plot_available():
        # Checked before running anything: no point benchmarking for a minute first.
        stderr.write(f"ringq bench: --plot needs matplotlib, which is not installed: {PLOT_HINT}\n")
        return 2

    if contest_names:
        if names:
            stderr.write(f"ringq bench: run the contests ({', '.join(contest_names)}) on their own, "
                         "not mixed with the queue workloads\n")
            return 2
        if args.plot:
            stderr.write("ringq bench: --plot draws the queue workloads only\n")
            return 2
        return run_contests([CONTESTS[name] for name in contest_names], rounds, args.quick, stdout, stderr,
                            args.json)

    config = BenchConfig(names, rounds, args.quick, args.timeout)
    environment = describe_environment()
    missing = missing_optional_peers()
    kinds = available_queue_kinds()
    progress = Progress(stderr)
    progress.line(
        f"ringq bench: {len(names)} workload(s) x {len(kinds)} queues x {rounds} rounds"
        f"{' (quick)' if config.quick else ''}; ringq.IMPLEMENTATION = "
        f"{environment['ringq']['implementation']!r}")
    for name, reason in sorted(missing.items()):
        progress.line(f"skipping {name}: not importable ({reason}); pip install 'ringq[bench]'")
    try:
        results = run_benchmarks(config, progress, kinds)
    except KeyboardInterrupt:
        stderr.write("\nringq bench: interrupted\n")
        return 130
    total_seconds = progress.elapsed()

    # With --json -, stdout carries the JSON alone (pipe it to jq), and the table goes to stderr.
    table_stream = stderr if json_to_stdout else stdout
    table_stream.write(report(results, environment, config, total_seconds, missing) + "\n")
    table_stream.flush()
    try:
        if args.json:
            document = to_json(results, environment, config, total_seconds, missing)
            if json_to_stdout:
                json.dump(document, stdout, indent=2)
                stdout.write("\n")
                stdout.flush()
            else:
                with open(args.json, "w", encoding="utf-8") as out:
                    json.dump(document, out, indent=2)
                    out.write("\n")
                progress.line(f"wrote {args.json}")
        if args.plot:
            write_plot(results, environment, args.plot, rounds, list(missing))
            progress.line(f"wrote {args.plot}")
    except (OSError, ValueError) as exc:  # unwritable path, unknown image format
        stderr.write(f"ringq bench: could not write the output: {exc}\n")
        return 1
    failed = [f"{result.spec.name}/{entry.queue}" for result in results
              for entry in result.entries if entry.error]
    if failed:
        stderr.write(f"ringq bench: FAILED: {', '.join(failed)}\n")
        return 1
    return 0
