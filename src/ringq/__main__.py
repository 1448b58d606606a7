"""The ringq command line: ``python -m ringq bench [options]``.

Only argument parsing lives here; the work is done by :mod:`ringq.bench.runner`.
"""
from __future__ import annotations

import argparse
import sys
from typing import List, Optional


def build_parser() -> argparse.ArgumentParser:
    return _build_parsers()[0]


def _build_parsers() -> "tuple[argparse.ArgumentParser, argparse.ArgumentParser]":
    """The top-level parser and the bench subparser (which reports bench's own errors)."""
    from .bench.runner import add_bench_arguments

    parser = argparse.ArgumentParser(
        prog="python -m ringq",
        description="ringq: a bounded, C-accelerated drop-in for queue.Queue.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    bench = commands.add_parser(
        "bench",
        help="benchmark ringq against queue.Queue and other queues on this machine",
        description=(
            "Benchmark ringq.Queue against queue.Queue, queue.SimpleQueue, a hand-written "
            "deque+Condition queue and, when installed (pip install 'ringq[bench]'), janus "
            "and faster-fifo. Workloads: single-thread put/get pairs, 1 producer + 1 "
            "consumer, 4 producers + 4 consumers, batches of 1000, ping-pong latency and "
            "memory. Every run checks that every item arrived. Each figure is the median "
            "of at least 5 rounds, the queues interleaved within each round; rows whose "
            "rounds spread more than 20% are marked '!'. Progress goes to stderr, the table "
            "to stdout. For the range over several runs: run it a few times with --json "
            "and summarise with python -m ringq.bench.summary RUN.json ..."
        ),
        epilog=(
            "Exit status: 0 on success, 1 if a workload failed (lost items, a hang, an "
            "exception), 2 on a usage error."
        ),
    )
    add_bench_arguments(bench)
    commands.add_parser(
        "bench-async",
        help="benchmark the async calls against janus, culsans and asyncio.Queue "
             "(python -m ringq bench-async --help)",
        add_help=False,
    )
    return parser, bench


def main(argv: Optional[List[str]] = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["bench-async"]:
        # Its own options, parsed by ringq.bench.asyncbench.
        from .bench.asyncbench import main as bench_async_main

        return bench_async_main(argv[1:])
    parser, bench = _build_parsers()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        # argparse would blame the top-level parser and print its usage; an unknown
        # option after "bench" is a bench usage error, so show the bench usage.
        (bench if args.command == "bench" else parser).error(
            f"unrecognized arguments: {' '.join(unknown)}")
    if args.command is None:
        parser.print_help()
        return 0
    from .bench.runner import main as bench_main

    return bench_main(args)


if __name__ == "__main__":
    sys.exit(main())
