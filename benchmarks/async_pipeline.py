"""3 async stages of trivial coroutines over 200,000 items: ringq.Pipeline against the
chain of asyncio.Queues and tasks people write by hand (issue 20, section 6).

    python benchmarks/async_pipeline.py                 # 200,000 items, 5 rounds, asyncio's loop
    python benchmarks/async_pipeline.py --loop uvloop   # both sides on uvloop
    python benchmarks/async_pipeline.py --items 20000   # a quick check

This is the ``async-pipeline`` workload of ``python -m ringq bench --workload async``
(the code is in ``ringq.bench.async_toolkit``; this script runs it on the loop you
choose). Entries, each checking its result:

``hand-written``
    a source task, one task per stage and the consumer, joined by
    ``asyncio.Queue(1024)`` s, a sentinel to stop: ``item = await q.get();
    await out.put(await fn(item))``. All on the caller's loop.
``ringq.Pipeline, async for``
    ``Pipeline(range(n))`` with 3 ``async def`` stages (one worker each, queues of
    1024), consumed by ``async for``: the stages run on the pipeline's own loop (made
    by the same loop kind), the caller's loop awaits the results.
``ringq.Pipeline, sync for``
    the same pipeline consumed by a plain ``for`` (no caller loop at all).

Each figure is the median of at least 5 rounds (the entries interleave within a round);
the ratio is the entry's items/s over the hand-written chain's (above 1.00x ringq wins);
a row whose rounds spread more than 20% is marked '!'.
The script is not part of the test suite's timing: tests/test_examples.py runs it
once at a small size to check that it still works.
"""
import argparse
import asyncio
import sys

from ringq.bench.async_toolkit import CONTESTS, pipeline_contenders
from ringq.bench.contest import MIN_ROUNDS, report, run_contest


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS, help=f"at least {MIN_ROUNDS}")
    parser.add_argument("--loop", choices=["asyncio", "uvloop"], default="asyncio")
    args = parser.parse_args(argv)
    if args.rounds < MIN_ROUNDS:
        parser.error(f"--rounds must be at least {MIN_ROUNDS}: a median of fewer rounds is not a steady figure")
    if args.loop == "uvloop":
        import uvloop
        new_loop = uvloop.new_event_loop
    else:
        new_loop = asyncio.new_event_loop
    run = run_contest(CONTESTS["async-pipeline"], args.items, args.rounds, sys.stderr,
                      entries=pipeline_contenders(new_loop))
    print(f"{args.loop} loop")
    print(report([run], args.rounds))
    return 1 if run.error else 0


if __name__ == "__main__":
    sys.exit(main())
