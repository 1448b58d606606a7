"""``python -m ringq bench``: argument handling and output format, at tiny sizes.

No timing is asserted here (timings belong to the benchmark itself); these tests
check what the command accepts, refuses and prints, and that the memory
measurement is right against structures whose cost is known.
"""
import collections
import dataclasses
import datetime
import json
import queue
import struct
import sys

import pytest

from ringq import __main__ as cli
from ringq.bench import registry, runner, workloads
from ringq.bench.peers import CAPACITY_ROW_MAXSIZE, QueueKind, available_queue_kinds

POINTER = struct.calcsize("P")
TINY = {"pair": 300, "spsc": 2_000, "batch": 2_000, "pingpong": 20, "memory": 5}


@pytest.fixture
def tiny(monkeypatch):
    """Shrink the workloads these tests run, so a whole bench run takes a moment."""
    for name, size in TINY.items():
        spec = registry.WORKLOADS[name]
        monkeypatch.setitem(registry.WORKLOADS, name,
                            dataclasses.replace(spec, default_size=size, quick_size=size))


def bench(capsys, *args):
    """Run the CLI in-process; returns (exit status, stdout, stderr)."""
    try:
        status = cli.main(["bench", *args])
    except SystemExit as exit_:  # argparse's usage errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


# --- arguments ---------------------------------------------------------------------


def test_unknown_option_prints_the_bench_usage(capsys):
    status, out, err = bench(capsys, "--bogus")
    assert status == 2
    assert err.startswith("usage: python -m ringq bench ")
    assert "unrecognized arguments: --bogus" in err
    assert "--rounds N" in err  # bench's own options, not the top-level usage
    assert out == ""


@pytest.mark.parametrize("rounds", ["0", "4", "-1", "five"])
def test_rounds_below_the_minimum_is_an_error(capsys, rounds):
    status, out, err = bench(capsys, "--rounds", rounds)
    assert status == 2
    assert "usage: python -m ringq bench" in err
    assert "argument --rounds" in err
    assert out == ""


def test_unknown_workload_is_an_error(capsys):
    status, _, err = bench(capsys, "--workload", "nope")
    assert status == 2
    assert "unknown workload nope" in err


# --- output ------------------------------------------------------------------------


def test_quick_says_quick_in_the_header(capsys, tiny):
    status, out, _ = bench(capsys, "--quick", "--workload", "pair")
    assert status == 0
    header = out.split("\n\n")[0]
    assert "QUICK" in header
    status, out, _ = bench(capsys, "--workload", "pair")
    assert status == 0
    assert "QUICK" not in out


def test_json_dash_writes_only_json_to_stdout(capsys, tiny):
    status, out, err = bench(capsys, "--quick", "--workload", "pair,batch", "--json", "-")
    assert status == 0
    document = json.loads(out)  # stdout is the JSON and nothing else
    assert "pair: single-thread put + get pairs" in err  # the table moved to stderr
    stamp = datetime.datetime.fromisoformat(document["timestamp"])
    assert stamp.tzinfo is not None and stamp.utcoffset() == datetime.timedelta(0)
    assert abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) < 600
    assert document["method"]["quick"] is True
    assert document["method"]["noisy_spread"] == runner.NOISY_SPREAD
    pair, batch = document["workloads"]["pair"], document["workloads"]["batch"]
    # batch_method only where the workload moves batches.
    assert all("batch_method" not in entry for entry in pair["entries"].values())
    assert batch["entries"]["ringq"]["batch_method"] == "put_many/get_many"
    assert batch["entries"]["queue.Queue"]["batch_method"] == "per-item loop"
    for entry in pair["entries"].values():
        assert len(entry["rounds"]) == runner.MIN_ROUNDS
        assert isinstance(entry["noisy"], bool)


def test_json_to_a_file_keeps_the_table_on_stdout(capsys, tiny, tmp_path):
    path = tmp_path / "out.json"
    status, out, _ = bench(capsys, "--quick", "--workload", "pair", "--json", str(path))
    assert status == 0
    assert "pair: single-thread put + get pairs" in out
    assert "timestamp" in json.loads(path.read_text())


def test_spsc_has_the_capacity_row(capsys, tiny):
    status, out, _ = bench(capsys, "--quick", "--workload", "spsc")
    assert status == 0
    assert f"ringq maxsize={CAPACITY_ROW_MAXSIZE}" in out
    names = [kind.name for kind in registry.WORKLOADS["spsc"].entries(available_queue_kinds())]
    assert names[:2] == ["ringq", f"ringq maxsize={CAPACITY_ROW_MAXSIZE}"]
    row = registry.WORKLOADS["spsc"].entries(available_queue_kinds())[1]
    assert row(1024).maxsize == CAPACITY_ROW_MAXSIZE  # the workload's maxsize is overridden


def fake_result(spreads):
    """A pair-workload result whose queues' rounds have the given relative spreads."""
    spec = registry.WORKLOADS["pair"]
    entries = []
    for name, spread in spreads.items():
        entry = runner.EntryResult(name, spec.default_size, "per-item loop")
        # Five rounds around 1e6 items/s: the range is 2 * spread of the median.
        entry.rounds = [{"items_per_s": 1e6 * (1 + spread * k)} for k in (-1, -0.5, 0, 0.5, 1)]
        entries.append(entry)
    return runner.WorkloadResult(spec, spec.default_size, entries)


def render(results, quick=False):
    config = runner.BenchConfig(["pair"], runner.MIN_ROUNDS, quick)
    environment = runner.describe_environment()
    return runner.report(results, environment, config, 1.0, {})


def test_noisy_rows_are_flagged_with_a_footer():
    text = render([fake_result({"ringq": 0.05, "queue.Queue": 0.35, "queue.SimpleQueue": 0.21})])
    rows = {line.split()[0]: line for line in text.splitlines() if line.startswith("  queue")
            or line.startswith("  ringq")}
    assert rows["ringq"].rstrip().endswith("±5.0%")
    assert rows["queue.Queue"].rstrip().endswith("±35.0% !")
    assert rows["queue.SimpleQueue"].rstrip().endswith("±21.0% !")
    footer = text.split("\n\n")[-2]
    assert footer.startswith("! 2 row(s) with a spread above 20% (marked !)")
    assert "--rounds 15" in footer and "quiet machine" in footer
    assert "pair/queue.Queue" in footer and "pair/queue.SimpleQueue" in footer
    assert "pair/ringq" not in footer


def test_steady_rows_have_no_flag_and_no_footer():
    text = render([fake_result({"ringq": 0.05, "queue.Queue": 0.19})])
    assert " !" not in text
    assert "spread above" not in text


# --- memory measurement against known structures ----------------------------------------


class ListQueue:
    """Stores each item as one more pointer in a list: about POINTER bytes an item."""

    def __init__(self, maxsize):
        self.maxsize = maxsize
        self.items = []

    def put(self, item):
        self.items.append(item)

    def get(self):
        return self.items.pop(0)


def test_memory_per_item_of_a_list_of_pointers():
    kind = QueueKind("list", ListQueue)
    figures = workloads.measure_memory(kind, n_queues=5)
    # A list over-allocates by an eighth or so as it grows: between 1 and 1.25 pointers.
    assert POINTER <= figures.bytes_per_item <= 1.25 * POINTER, figures


def test_memory_per_item_is_never_below_a_pointer_after_freed_deques():
    # CPython 3.9 keeps up to 16 freed deque blocks module-wide and hands them to the
    # next deque that grows: counted from an empty queue, that hid most of queue.Queue's
    # blocks (about 2 bytes an item, below the pointer each item needs).
    junk = [collections.deque(range(1000)) for _ in range(20)]
    del junk  # fills 3.9's block cache (a no-op on 3.11+, where each deque has its own)
    kind = QueueKind("deque+Condition", workloads_peers_deque())
    figures = workloads.measure_memory(kind, n_queues=5)
    # 64 items per block of 64 + 2 pointers: 66/64 of a pointer an item.
    assert POINTER <= figures.bytes_per_item <= 1.1 * POINTER, figures


def workloads_peers_deque():
    from ringq.bench.peers import DequeConditionQueue

    return DequeConditionQueue


@pytest.mark.skipif(sys.implementation.name != "cpython", reason="tracemalloc sizes are CPython's")
def test_memory_workload_figures_are_at_least_a_pointer_for_every_queue():
    for kind in available_queue_kinds():
        if not kind.memory_traced:
            continue
        figures = workloads.measure_memory(kind, n_queues=5)
        assert figures.bytes_per_item >= POINTER, (kind.name, figures)


# --- the range over several runs -------------------------------------------------------


def test_summary_gives_the_range_over_runs(capsys, tiny, tmp_path):
    from ringq.bench import summary

    paths = []
    for run in range(2):
        path = tmp_path / f"bench-{run}.json"
        assert bench(capsys, "--quick", "--workload", "pair", "--json", str(path))[0] == 0
        paths.append(str(path))
    documents = [json.loads(open(path).read()) for path in paths]
    ratios = sorted(document["workloads"]["pair"]["entries"]["ringq"]["ratio_vs_queue.Queue"]["items_per_s"]
                    for document in documents)

    # Quick runs are refused unless asked for: their figures are not the ones to quote.
    with pytest.raises(SystemExit) as refused:
        summary.main(paths)
    assert refused.value.code == 2
    assert "--quick run" in capsys.readouterr().err

    assert summary.main(["--allow-quick", "--queue", "ringq", *paths]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Range over 2 run(s) of `python -m ringq bench`")
    [row] = [line for line in out.splitlines() if line.startswith("| pair | ringq |")]
    low, high = (f"{value:.2f}x" if value < 100 else f"{value:,.0f}x" for value in ratios)
    expected = low if low == high else f"{low} - {high}"
    assert row.split(" | ")[2] == expected
    assert row.endswith("| 2 |")
    assert "queue.Queue |" not in out.split("|---|")[1]  # the references are not rows


def test_summary_refuses_a_foreign_file(capsys, tmp_path):
    from ringq.bench import summary

    path = tmp_path / "other.json"
    path.write_text('{"format": "something else"}')
    with pytest.raises(SystemExit) as refused:
        summary.main([str(path)])
    assert refused.value.code == 2
    assert "not the JSON of python -m ringq bench" in capsys.readouterr().err


def test_round_ratios_pair_the_rounds_side_by_side():
    result = fake_result({"ringq": 0.0, "queue.Queue": 0.0})
    result.entry("ringq").rounds = [{"items_per_s": v} for v in (2.0, 4.0, 6.0)]
    result.entry("queue.Queue").rounds = [{"items_per_s": v} for v in (1.0, 1.0, 2.0)]
    metric = result.spec.metrics[0]
    assert runner.round_ratios(result, "ringq", "queue.Queue", metric) == [2.0, 4.0, 3.0]
    result.entry("queue.Queue").error = "boom"
    assert runner.round_ratios(result, "ringq", "queue.Queue", metric) == []


def test_plot_is_written_with_a_failed_peer(tmp_path):
    pytest.importorskip("matplotlib")
    result = fake_result({"ringq": 0.1, "queue.Queue": 0.1, "queue.SimpleQueue": 0.1,
                          "deque+Condition": 0.1})
    result.entry("deque+Condition").error = "simulated failure"
    path = tmp_path / "ratios.png"
    runner.write_plot([result, fake_result({"ringq": 0.1, "queue.Queue": 0.1,
                                            "queue.SimpleQueue": 0.1})],
                      runner.describe_environment(), str(path), 5, ["janus.sync_q"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


# --- the toolkit workloads (PriorityQueue, Broadcast) ------------------------------


@pytest.fixture
def tiny_toolkit(monkeypatch):
    for name, size in {"priority": 400, "broadcast": 300, "broadcast_mt": 300}.items():
        spec = registry.WORKLOADS[name]
        monkeypatch.setitem(registry.WORKLOADS, name,
                            dataclasses.replace(spec, default_size=size, quick_size=size))


def test_toolkit_workloads_run_only_when_named():
    defaults = runner._workload_names(None)
    assert "pair" in defaults
    for name in ("priority", "broadcast", "broadcast_mt"):
        assert name in registry.WORKLOADS and name not in defaults


def test_toolkit_workloads_compare_with_their_stdlib_way(capsys, tiny_toolkit):
    status, out, err = bench(capsys, "--quick", "--workload", "priority,broadcast,broadcast_mt",
                             "--json", "-")
    assert status == 0, err
    document = json.loads(out)
    prio = document["workloads"]["priority"]["entries"]
    assert set(prio) == {"ringq.PriorityQueue", "queue.PriorityQueue"}
    assert prio["queue.PriorityQueue"]["ratio_vs_queue.PriorityQueue"]["items_per_s"] == 1.0
    assert prio["ringq.PriorityQueue"]["ratio_vs_queue.PriorityQueue"]["items_per_s"] > 0
    for name in ("broadcast", "broadcast_mt"):
        entries = document["workloads"][name]["entries"]
        assert set(entries) == {"ringq.Broadcast", "4 x queue.Queue.put", "4 x ringq.Queue.put"}
        assert entries["4 x queue.Queue.put"]["ratio_vs_4 x queue.Queue.put"]["items_per_s"] == 1.0
        assert all(entry["error"] is None for entry in entries.values())
    assert "vs queue.PriorityQueue" in err and "vs 4 x queue.Queue.put" in err  # the table


@pytest.mark.parametrize("name", ["priority", "broadcast", "broadcast_mt"])
def test_toolkit_workloads_catch_a_wrong_result(name):
    # The verification can fail: a queue that returns the items in plain FIFO order
    # (no priorities) or a broadcast that loses one item.
    import queue as stdlib_queue

    from ringq.bench import priority_broadcast as pb

    if name == "priority":
        class Fifo(stdlib_queue.Queue):
            def put(self, item, priority=None, block=True, timeout=None):
                super().put(item, block, timeout)

        kind = QueueKind(pb.RINGQ_PRIORITY, Fifo)
    else:
        class Lossy(stdlib_queue.Queue):
            def put(self, item, block=True, timeout=None):
                if item != 7:
                    super().put(item, block, timeout)

        kind = QueueKind(pb.STDLIB_FANOUT, Lossy)
    trial = registry.WORKLOADS[name].prepare(kind, 96)
    trial.run()
    with pytest.raises(workloads.WorkloadError):
        trial.verify()


# --- contests (ringq.bench.contest): run on their own ---------------------------------


@pytest.mark.parametrize("args", [("--workload", "async,pair"), ("--workload", "processes", "--plot", "x.png")])
def test_contests_run_on_their_own_without_plot(capsys, args):
    if "--plot" in args and not runner.plot_available():
        pytest.skip("--plot without matplotlib is refused before this check")
    status, _, err = bench(capsys, *args)
    assert status == 2
    assert ("on their own" in err) if "pair" in args[1] else ("--plot draws the queue workloads only" in err)


# --- pair and pingpong share their send/receive loop (workloads.count_mismatches) ----------


class _OffByOne(queue.Queue):
    """A queue whose get returns every int plus one: every reply is wrong."""

    def get(self, block=True, timeout=None):
        item = super().get(block, timeout)
        return item + 1 if isinstance(item, int) else item


def test_count_mismatches_counts_wrong_replies_and_stops_at_a_sentinel():
    sent = []
    assert workloads.count_mismatches(sent.append, lambda: sent[-1], 50) == 0
    assert workloads.count_mismatches(sent.append, lambda: sent[-1] + 1, 50) == 50
    assert workloads.count_mismatches(sent.append, lambda: None, 50) == 1  # a rescue's sentinel


@pytest.mark.parametrize("prepare", [workloads.prepare_pair, workloads.prepare_pingpong])
def test_pair_and_pingpong_catch_wrong_replies(prepare):
    trial = prepare(QueueKind("off-by-one", _OffByOne), 100, timeout=30)
    trial.run()
    with pytest.raises(workloads.WorkloadError, match="100 of 100"):
        trial.verify()
