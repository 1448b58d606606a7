"""Seed 003's image pipeline: a CPU-bound filter on every core (a process stage), then
4 processing workers and 2 upload workers (threads), joined by queues of 10.

The JavaScript original starts its workers in endless loops and has no way to
stop. Here the pipeline ends when the images run out (each stage drains, then
closes the next queue), the first failure stops every worker - thread or
process - and is raised here, and ``p.stats()`` shows which stage is the
bottleneck.

The filter is pure Python, so threads would run it on one core (the GIL);
``processes=True`` runs it in worker processes. The example runs the pipeline
both ways, checks that both produced the same pixels, and prints the speed-up.

Run: python examples/image_pipeline.py
"""
from __future__ import annotations

import multiprocessing
import sys
import time
import zlib
from typing import List, NamedTuple, Optional, Tuple

import ringq

SIZE = 4096  # bytes per image


class Image(NamedTuple):
    name: str
    pixels: bytes


def blur(item: Tuple[str, bytes]) -> Tuple[str, bytes]:
    """A box blur in pure Python: CPU-bound, the part worth running on every core.

    It takes and returns plain tuples: what crosses to a process is pickled.
    """
    name, pixels = item
    for _ in range(8):
        p = pixels
        n = len(p)
        pixels = bytes((p[i - 1] + 2 * p[i] + p[(i + 1) % n]) // 4 for i in range(n))
    return name, pixels


def to_image(item: Tuple[str, bytes]) -> Image:
    return Image(*item)


def process(image: Image) -> Image:
    """Resize, filter... (here: a little CPU and a little waiting)."""
    time.sleep(0.002)
    return image._replace(pixels=image.pixels[::2])


def upload(image: Image) -> Tuple[str, int]:
    """Upload to S3, a CDN... (here: waiting on the network). Returns the URL and a
    checksum of what was uploaded."""
    time.sleep(0.004)
    return f"https://cdn.example.com/{image.name}", zlib.crc32(image.pixels)


def _context() -> Optional[multiprocessing.context.BaseContext]:
    # The worker processes import `blur` by its module's name under spawn and
    # forkserver; a module loaded from a file under another name (as the tests load
    # it) is not importable there, and only fork (which copies it) can reach it.
    if __name__ not in sys.modules and "fork" in multiprocessing.get_all_start_methods():
        return multiprocessing.get_context("fork")
    return None


def run(count: int, processes: bool) -> Tuple[List[Tuple[str, int]], float, ringq.Pipeline]:
    images = ((f"img{i:03}.png", bytes(range(256)) * (SIZE // 256)) for i in range(count))
    start = time.perf_counter()
    with ringq.Pipeline(images) as p:
        # ordered=True keeps each stage's output in the order its input came in, so
        # with every stage ordered the URLs come out in the images' order.
        p.stage(blur, workers=2, maxsize=10, ordered=True, processes=processes,
                mp_context=_context() if processes else None)
        p.stage(to_image, maxsize=10, ordered=True)
        p.stage(process, workers=4, maxsize=10, ordered=True)
        p.stage(upload, workers=2, maxsize=10, ordered=True)
        results = list(p)
    return results, time.perf_counter() - start, p


def main(count: int = 60) -> List[str]:
    results, seconds, p = run(count, processes=True)
    for stats in p.stats():
        print(f"{stats.name:>8}: {stats.items_out:3} out, busy {stats.busy_seconds:.3f} s, "
              f"waited for room {stats.put_wait_seconds:.3f} s, for work {stats.get_wait_seconds:.3f} s")
    threaded, thread_seconds, _ = run(count, processes=False)
    # The check: the processes computed exactly what the threads computed, in order.
    if results != threaded:
        raise AssertionError("the process stage's output differs from the thread stage's")
    urls = [url for url, _ in results]
    print(f"uploaded {len(urls)} images, the last one to {urls[-1] if urls else None}")
    print(f"blur in 2 processes: {seconds:.3f} s; in 2 threads: {thread_seconds:.3f} s; "
          f"speed-up {thread_seconds / seconds:.2f}x on {multiprocessing.cpu_count()} CPUs")
    return urls


if __name__ == "__main__":
    main()
