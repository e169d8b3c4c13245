"""Messages and bytes the widget sends to the frontend while streaming.

Run: ``.venv/bin/python bench/bench_messages.py [--quick]``

Method: every widget comm message is recorded at the ipywidgets level (``comm.create_comm`` is
replaced by a comm that records what ``publish_msg`` would put on the wire, see
``bench/_common.py``), while a ``StreamView`` with no frontend consumes a ``demo`` stream from the
local server (child process) paced at 50, 1,000 and 20,000 tokens/s. Counted: ``comm_msg``
messages, i.e. state ``update``s (the ``snapshot``/``mode`` traits) and ``custom`` messages (the
``frame``s); the one ``comm_open`` is listed apart.

Figures:
- messages per second of streaming (target <= 60/s at every rate), and the busiest 1-s window;
  baseline: chunks per second, what a one-message-per-token widget would send;
- bytes to the frontend for a 100k-token answer: JSON bytes of the messages' ``data`` / UTF-8
  bytes of the answer (target <= 1.5x), also with the Jupyter envelope (header, HMAC) of each
  message as ``jupyter_client.Session`` serializes it; baseline: re-sending the whole text on
  each frame (the anti-pattern), computed from the same frames.
"""

from __future__ import annotations

import argparse
import time
from typing import Any

import openai
from _common import Recorder, busiest_window, header, record_comms

from nbstream.frontend import protocol
from nbstream.frontend.widget import StreamView
from nbstream.server import serve

PROMPT = [{"role": "user", "content": "benchmark"}]


def one_rate(client: openai.OpenAI, recorder: Recorder, rate: float, tokens: int) -> dict[str, Any]:
    recorder.messages.clear()
    stream = client.chat.completions.create(
        model="demo",
        messages=PROMPT,
        stream=True,
        extra_body={"nbstream": {"tokens": tokens, "tokens_per_s": rate}},
    )
    view = StreamView(stream)
    # what js/widget.js's initialize() says: a frontend holds the document, so the final
    # snapshot is kept in the kernel's state and not sent again (headless runs get it sent)
    view._on_frontend_msg(view, {"type": protocol.READY}, [])
    started = time.monotonic()
    view.start()
    ended = time.monotonic()
    if view.status != "done":
        raise SystemExit(f"stream ended {view.status}: {view.reason}")
    duration = ended - started
    msgs = recorder.widget_messages()
    times = [m[0] for m in msgs]
    custom = sum(1 for m in msgs if m[2] == "custom")
    updates = sum(1 for m in msgs if m[2] == "update")
    data_bytes = sum(m[3] for m in msgs)
    wire = sum(Recorder.wire_bytes(m[4]) for m in msgs)
    # baseline: each frame re-sending everything so far instead of the new text
    sent = 0
    full_resend = 0
    for m in msgs:
        content = m[4].get("content") or {}
        if protocol.is_frame(content):
            for part in protocol.read_frame(content)["parts"]:
                sent += len(part.get("text", "").encode("utf-8"))
        if m[2] == "custom":
            full_resend += m[3] + sent
    text_bytes = len(view.text.encode("utf-8"))
    snapshot_bytes = sum(m[3] for m in msgs if "snapshot" in (m[4].get("state") or {}))
    frame_bytes = sum(m[3] for m in msgs if m[2] == "custom")
    chunks = view.run.metrics.chunks
    return {
        "rate": rate,
        "tokens": tokens,
        "duration": duration,
        "chunks": chunks,
        "messages": len(msgs),
        "custom": custom,
        "updates": updates,
        "per_s": len(msgs) / duration,
        "busiest": busiest_window(times),
        "chunks_per_s": chunks / duration,
        "data_bytes": data_bytes,
        "wire_bytes": wire,
        "text_bytes": text_bytes,
        "full_resend": full_resend,
        "frame_text": sent,
        "frame_bytes": frame_bytes,
        "snapshot_bytes": snapshot_bytes,
        "opens": sum(1 for m in recorder.messages if m[1] == "comm_open"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="stream length at 50 and 1k/s")
    parser.add_argument("--big", type=int, default=100_000, help="tokens of the 20k tokens/s run")
    parser.add_argument("--quick", action="store_true", help="smoke run: 1 s streams, 5k tokens")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.big = 1.0, 5_000
    header("messages and bytes to the frontend")
    recorder = record_comms()
    recorder.keep_data = True
    plan = [
        (50.0, int(50 * args.seconds)),
        (1_000.0, int(1_000 * args.seconds)),
        (20_000.0, args.big),
    ]
    results = []
    with serve(process=True) as server:
        client = openai.OpenAI(base_url=server.base_url, api_key="local", max_retries=0)
        one_rate(client, recorder, 0, 500)  # warm up
        for rate, tokens in plan:
            r = one_rate(client, recorder, rate, tokens)
            results.append(r)
            print(
                f"  {rate:>8,.0f} tokens/s asked, {r['chunks_per_s']:>7,.0f} chunks/s got, "
                f"{r['tokens']:>7,} tokens in {r['duration']:6.2f} s: {r['messages']:>5} msgs "
                f"({r['custom']} frames + {r['updates']} state updates; +{r['opens']} comm_open)"
                f" = {r['per_s']:5.1f}/s, busiest 1 s: {r['busiest']}"
                f"  [baseline 1 msg/chunk: {r['chunks_per_s']:,.0f}/s]",
                flush=True,
            )
    print("messages per second of streaming (target <= 60/s at every rate):")
    for r in results:
        ratio = r["per_s"] / r["chunks_per_s"]
        print(
            f"  {r['rate']:>8,.0f} tok/s: {r['per_s']:.1f} msgs/s (busiest 1 s window "
            f"{r['busiest']}); baseline one-per-chunk {r['chunks_per_s']:,.0f}/s; ratio {ratio:.4f}"
        )
    big = results[-1]
    tb = big["text_bytes"]
    print(f"bytes to the frontend, {big['tokens']:,}-token answer ({tb:,} bytes of text):")
    print(
        f"  widget message data: {big['data_bytes']:,} bytes = {big['data_bytes'] / tb:.3f}x "
        "the text (target <= 1.5x)"
    )
    print(
        f"  of which: frames {big['frame_bytes']:,} (their text {big['frame_text']:,}, the rest "
        f"seq/offsets/status/metrics), snapshot trait updates {big['snapshot_bytes']:,}, other "
        f"state updates {big['data_bytes'] - big['frame_bytes'] - big['snapshot_bytes']:,}"
    )
    print(f"  with Jupyter envelopes: {big['wire_bytes']:,} bytes = {big['wire_bytes'] / tb:.3f}x")
    print(
        f"  baseline, whole text re-sent each frame: {big['full_resend']:,} bytes = "
        f"{big['full_resend'] / tb:.1f}x"
    )


if __name__ == "__main__":
    main()
