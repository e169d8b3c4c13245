"""How fast the local server emits chunks, against the openai SDK parsing the same stream.

Run: ``.venv/bin/python bench/server_throughput.py [--chunks 100000] [--process]``

The server must never be the bottleneck of the consumer benchmarks: it has to emit chunks far
faster than the SDK parses them (~14k chunks/s on 2 cores). Both numbers come from one run, on the
same server, so the ratio is what matters.
"""

from __future__ import annotations

import argparse
import http.client
import json
import time

import openai

from nbstream.server import serve


def raw_rate(base_url: str, chunks: int) -> tuple[float, int]:
    """Chunks/s read with a plain HTTP client that does no parsing (the server's emission rate)."""
    host, port = base_url.removeprefix("http://").removesuffix("/v1").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    body = json.dumps(
        {
            "model": f"demo?tokens={chunks}",
            "messages": [{"role": "user", "content": "x"}],
            "stream": True,
        }
    )
    started = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", body, {"Content-Type": "application/json"})
    data = conn.getresponse().read()
    elapsed = time.perf_counter() - started
    conn.close()
    events = data.count(b"data: {")
    return events / elapsed, len(data)


def sdk_rate(base_url: str, chunks: int) -> float:
    """Chunks/s of the bare openai SDK loop over the same stream."""
    client = openai.OpenAI(base_url=base_url, api_key="local")
    started = time.perf_counter()
    count = 0
    stream = client.chat.completions.create(
        model=f"demo?tokens={chunks}", messages=[{"role": "user", "content": "x"}], stream=True
    )
    with stream:
        for _ in stream:
            count += 1
    return count / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--process", action="store_true", help="server in a child process")
    args = parser.parse_args()
    with serve(process=args.process) as server:
        raw_rate(server.base_url, 1000)  # warm up
        raw, size = max(raw_rate(server.base_url, args.chunks) for _ in range(3))
        sdk = sdk_rate(server.base_url, args.chunks)
    where = "child process" if args.process else "in-process thread"
    print(f"server ({where}): {raw:,.0f} chunks/s emitted ({size / 1e6:.1f} MB per stream)")
    print(f"openai SDK loop:  {sdk:,.0f} chunks/s")
    print(f"server / SDK:     {raw / sdk:.1f}x")


if __name__ == "__main__":
    main()
