#!/usr/bin/python3
"""How fast an adaptive pool meets a burst: N HTTP requests to nginx opened at once
(asyncio, one connection each), each a slow request of MS ms; prints each request's
wait for a worker (its time to the response, less MS), as
"burst N MS median_wait_ms max_wait_ms failed". Also, with --first: one request to a
pool with no worker, then R warm ones, as "first FIRST_MS WARM_MEDIAN_MS".

    pool_burst.py PORT burst N MS [PATH]
    pool_burst.py PORT first R

PATH is the slow request's, with {ms} and {i} (default /slow?ms={ms}&n={i}).
"""
import asyncio
import statistics
import sys
import time


async def get(port, path):
    t0 = time.monotonic()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(f"GET {path} HTTP/1.0\r\nHost: bench\r\n\r\n".encode())
    await writer.drain()
    data = await reader.read()
    writer.close()
    ok = data.startswith(b"HTTP/1.1 200") or data.startswith(b"HTTP/1.0 200")
    return time.monotonic() - t0, ok


async def burst(port, n, ms, path):
    results = await asyncio.gather(*(get(port, path.format(ms=ms, i=i)) for i in range(n)))
    waits = [max(0.0, t * 1000 - ms) for t, _ in results]
    failed = sum(1 for _, ok in results if not ok)
    print(f"burst {n} {ms} {statistics.median(waits):.2f} {max(waits):.2f} {failed}")


async def first(port, reps):
    t, ok = await get(port, "/first")
    warm = [(await get(port, f"/warm{i}"))[0] * 1000 for i in range(reps)]
    print(f"first {t * 1000:.2f} {statistics.median(warm):.2f} {0 if ok else 1}")


if __name__ == "__main__":
    port, what = int(sys.argv[1]), sys.argv[2]
    if what == "burst":
        path = sys.argv[5] if len(sys.argv) > 5 else "/slow?ms={ms}&n={i}"
        asyncio.run(burst(port, int(sys.argv[3]), int(sys.argv[4]), path))
    else:
        asyncio.run(first(port, int(sys.argv[3])))
