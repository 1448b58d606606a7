"""ringq.ProcessQueue against multiprocessing.Queue, multiprocessing.SimpleQueue and faster-fifo.

Runs the ``process`` workloads of ``python -m ringq bench`` (see ringq/bench/process.py
for what each one does and how it is measured), side by side in one run:

    python benchmarks/process_queue.py                  # every workload, 5 rounds
    python benchmarks/process_queue.py --rounds 9 --workload process-1to1,process-batch
    python benchmarks/process_queue.py --quick --json out.json

faster-fifo is compared when installed (``pip install faster-fifo``, Linux and macOS).
Run it on a quiet machine: every figure is a median of interleaved rounds, and the
spread column says how far the rounds were apart.
"""
import argparse
import sys

from ringq.bench.contest import MIN_ROUNDS, main
from ringq.bench.registry import ALIASES, CONTESTS

PROCESS_WORKLOADS = ALIASES["process"]


def parse(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workload", default="process",
                        help="comma-separated names among " + ", ".join(PROCESS_WORKLOADS) + " (default: all)")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS,
                        help=f"interleaved rounds (default and minimum {MIN_ROUNDS})")
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes, for a smoke run")
    parser.add_argument("--json", metavar="PATH", help="also write every round's figure as JSON ('-': stdout)")
    return parser.parse_args(argv)


if __name__ == "__main__":
    args = parse(sys.argv[1:])
    names = [n for n in args.workload.split(",") if n]
    if names == ["process"]:
        names = list(PROCESS_WORKLOADS)
    unknown = [n for n in names if n not in PROCESS_WORKLOADS]
    if unknown or args.rounds < MIN_ROUNDS:
        sys.exit(f"unknown workload {unknown} (choose from {', '.join(PROCESS_WORKLOADS)}) "
                 f"or --rounds below {MIN_ROUNDS}")
    sys.exit(main([CONTESTS[n] for n in names], args.rounds, args.quick, sys.stdout, sys.stderr, args.json))
