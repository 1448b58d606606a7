"""Seed 003's image pipeline: 4 processing workers, then 2 upload workers, joined by
queues of 10.

The JavaScript original starts its workers in endless loops and has no way to
stop. Here the pipeline ends when the images run out (each stage drains, then
closes the next queue), the first failure stops every worker and is raised here,
and ``p.stats()`` shows which stage is the bottleneck.

Run: python examples/image_pipeline.py
"""
from __future__ import annotations

import time
from typing import List, NamedTuple

import ringq


class Image(NamedTuple):
    name: str
    pixels: bytes


def process(image: Image) -> Image:
    """Resize, filter... (here: a little CPU and a little waiting)."""
    time.sleep(0.002)
    return image._replace(pixels=image.pixels[::2])


def upload(image: Image) -> str:
    """Upload to S3, a CDN... (here: waiting on the network)."""
    time.sleep(0.004)
    return f"https://cdn.example.com/{image.name}"


def main(count: int = 60) -> List[str]:
    images = (Image(f"img{i:03}.png", bytes(64)) for i in range(count))
    with ringq.Pipeline(images) as p:
        # ordered=True keeps each stage's output in the order its input came in, so
        # with both stages ordered the URLs come out in the images' order.
        p.stage(process, workers=4, maxsize=10, ordered=True)
        p.stage(upload, workers=2, maxsize=10, ordered=True)
        urls = list(p)
    for stats in p.stats():
        print(f"{stats.name:>8}: {stats.items_out:3} out, busy {stats.busy_seconds:.3f} s, "
              f"waited for room {stats.put_wait_seconds:.3f} s, for work {stats.get_wait_seconds:.3f} s")
    print(f"uploaded {len(urls)} images, the last one to {urls[-1] if urls else None}")
    return urls


if __name__ == "__main__":
    main()
