"""SSE decoding and JSON parsing per event: the choices behind nbstream's fast path (issue 16 §1).

Run: ``.venv/bin/python bench/bench_sse.py [--chunks 100000] [--reps 3] [--quick]``

The body of a ``demo`` answer of ``--chunks`` tokens is read once from the local server, as the
HTTP reads the client got (~32 KB each); then, in this process, alternating, CPU per event of:

- the openai SDK's own ``SSEDecoder.iter_bytes`` (line by line, a regex per read);
- httpx-sse's ``SSEDecoder`` over httpx's line decoder (only when ``httpx_sse`` is installed; it
  is not a dependency);
- nbstream's ``sources.sse.SSEDecoder`` (a whole read split at once);
- parsing every event's data with ``json.loads`` and with ``nbstream.sources.sse.loads`` (orjson,
  ``json`` as the fallback).
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import openai
from _common import PROMPT, header, median

from nbstream.server import serve
from nbstream.sources.sse import SSEDecoder, loads


def body_reads(chunks: int) -> list[bytes]:
    with serve() as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        resource = client.chat.completions.with_streaming_response
        with resource.create(
            model="demo",
            messages=PROMPT,  # type: ignore[arg-type]
            stream=True,
            extra_body={"nbstream": {"tokens": chunks}},
        ) as response:
            return list(response.http_response.iter_bytes())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--reps", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="smoke run: 5,000 chunks, 2 reps")
    args = parser.parse_args()
    if args.quick:
        args.chunks, args.reps = 5_000, 2
    header(f"SSE decoding and JSON per event, {args.chunks:,} chunks x {args.reps} reps")
    reads = body_reads(args.chunks)
    datas = [d for _, d in SSEDecoder().feed(b"".join(reads)) if not d.startswith("[DONE]")]
    print(f"body: {sum(map(len, reads)):,} bytes in {len(reads)} reads, {len(datas):,} events")

    def sdk() -> int:
        from openai._streaming import SSEDecoder as SDKDecoder

        return sum(1 for _ in SDKDecoder().iter_bytes(iter(reads)))

    def ours() -> int:
        decoder = SSEDecoder()
        return sum(len(decoder.feed(r)) for r in reads)

    def json_loads() -> int:
        for d in datas:
            json.loads(d)
        return len(datas)

    def orjson_loads() -> int:
        for d in datas:
            loads(d)
        return len(datas)

    runners: dict[str, Callable[[], int]] = {"sdk SSEDecoder": sdk}
    try:
        from httpx._decoders import LineDecoder, TextDecoder
        from httpx_sse._decoders import SSEDecoder as HttpxSSEDecoder

        def httpx_sse() -> int:
            text, lines, dec = TextDecoder(), LineDecoder(), HttpxSSEDecoder()
            n = 0
            for r in reads:
                for line in lines.decode(text.decode(r)):
                    if dec.decode(line.rstrip("\n")) is not None:
                        n += 1
            return n

        runners["httpx-sse"] = httpx_sse
    except ImportError:
        print("httpx-sse not installed: not measured")
    runners.update(
        {"nbstream SSEDecoder": ours, "json.loads": json_loads, "sse.loads": orjson_loads}
    )
    cpu: dict[str, list[float]] = {name: [] for name in runners}
    for rep in range(args.reps):
        names = list(runners)
        k = rep % len(names)
        for name in names[k:] + names[:k]:
            started = time.process_time()
            count = runners[name]()
            cpu[name].append((time.process_time() - started) / max(count, 1) * 1e6)
    for name, values in cpu.items():
        print(
            f"{name:20s} median {median(values):5.2f} us per event  {[round(v, 2) for v in values]}"
        )


if __name__ == "__main__":
    main()
