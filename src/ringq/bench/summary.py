"""The range of ringq's ratios over several full runs of ``python -m ringq bench``.

One run on a shared or busy machine can be lucky or unlucky; the README quotes the
range over several. Run the benchmark a few times with ``--json``, then summarise::

    for run in 1 2 3 4 5; do python -m ringq bench --json bench-$run.json; done
    python -m ringq.bench.summary bench-*.json

The output is a Markdown table: for every workload, metric and queue, the lowest and
highest ratio against queue.Queue and queue.SimpleQueue across the runs (each run's
ratio is itself a median of interleaved rounds), and how many runs had it. Runs made
with ``--quick`` are refused unless ``--allow-quick`` is given: quick figures are not
the ones to quote. Exit status: 0, or 2 on a usage error (unreadable or foreign file).
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Dict, List, Optional, Sequence, Tuple

from .peers import REFERENCE, SIMPLE_REFERENCE

__all__ = ["collect", "main", "render"]

#: (workload, metric label, queue) -> {reference: [ratio of each run]}. A workload
#: with its own reference (priority, broadcast: see the JSON's "reference") files its
#: ratios against it under REFERENCE, and render() names it.
Ranges = Dict[Tuple[str, str, str], Dict[str, List[float]]]


def collect(documents: Sequence[Dict[str, Any]]) -> Ranges:
    """Every run's ratios, keyed by workload, metric and queue, in first-seen order."""
    ranges: Ranges = {}
    for document in documents:
        for workload, data in document["workloads"].items():
            own = data.get("reference", REFERENCE)
            for metric in data["metrics"]:
                for queue, entry in data["entries"].items():
                    slot = ranges.setdefault((workload, metric["label"], queue),
                                             {REFERENCE: [], SIMPLE_REFERENCE: []})
                    for reference, key in ((REFERENCE, own), (SIMPLE_REFERENCE, SIMPLE_REFERENCE)):
                        ratio = entry.get("ratio_vs_" + key, {}).get(metric["key"])
                        if ratio is not None:
                            slot[reference].append(ratio)
    return ranges


def _span(values: List[float]) -> str:
    if not values:
        return "n/a"
    low, high = min(values), max(values)

    def fmt(value: float) -> str:
        return f"{value:.2f}x" if value < 100 else f"{value:,.0f}x"

    return fmt(low) if fmt(low) == fmt(high) else f"{fmt(low)} - {fmt(high)}"


def render(documents: Sequence[Dict[str, Any]], queue_filter: Optional[str] = None) -> str:
    """The Markdown table of ranges, with a line saying what it summarises."""
    stamps = sorted(document.get("timestamp") or "?" for document in documents)
    python = {document["environment"]["python"]["version"] for document in documents}
    own_names = any(data.get("reference", REFERENCE) != REFERENCE
                    for document in documents for data in document["workloads"].values())
    lines = [
        f"Range over {len(documents)} run(s) of `python -m ringq bench` "
        f"({stamps[0]} to {stamps[-1]}, Python {', '.join(sorted(python))}):",
        "",
        f"| workload | queue | vs {REFERENCE}{' (or as named)' if own_names else ''} "
        f"| vs {SIMPLE_REFERENCE} | runs |",
        "|---|---|---|---|---|",
    ]
    own_reference = {workload: data.get("reference", REFERENCE)
                     for document in documents for workload, data in document["workloads"].items()}
    for (workload, label, queue), by_reference in collect(documents).items():
        if queue_filter and not queue.startswith(queue_filter):
            continue
        own = own_reference.get(workload, REFERENCE)
        if queue in (REFERENCE, SIMPLE_REFERENCE, own):
            continue  # 1.00x against itself, by definition
        name = workload if label in ("items/s", "us/round trip") else f"{workload} ({label})"
        if own != REFERENCE:
            queue = f"{queue} (vs {own})"
        runs = max(len(values) for values in by_reference.values())
        lines.append(f"| {name} | {queue} | {_span(by_reference[REFERENCE])} | "
                     f"{_span(by_reference[SIMPLE_REFERENCE])} | {runs} |")
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ringq.bench.summary",
        description="Summarise several `python -m ringq bench --json` files: the range of "
                    "each ratio across the runs, as a Markdown table.")
    parser.add_argument("files", nargs="+", metavar="RUN.json")
    parser.add_argument("--queue", metavar="PREFIX",
                        help="only queues whose name starts with PREFIX (e.g. ringq)")
    parser.add_argument("--allow-quick", action="store_true",
                        help="accept runs made with --quick (rougher figures)")
    args = parser.parse_args(argv)
    documents = []
    for path in args.files:
        try:
            with open(path, encoding="utf-8") as source:
                document = json.load(source)
        except (OSError, ValueError) as exc:
            parser.error(f"{path}: {exc}")
        if not isinstance(document, dict) or document.get("format") != "ringq-bench/1":
            parser.error(f"{path}: not the JSON of python -m ringq bench")
        if document["method"].get("quick") and not args.allow_quick:
            parser.error(f"{path}: a --quick run; its figures are not the ones to quote "
                         "(--allow-quick to summarise it anyway)")
        documents.append(document)
    sys.stdout.write(render(documents, args.queue) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
