"""A real ChunkLog written by StreamRun is served again by the local server, chunk for chunk."""

from __future__ import annotations

from pathlib import Path

import openai

from nbstream.run.log import ChunkLog
from nbstream.run.stream_run import StreamRun
from nbstream.server import serve
from nbstream.sources.request import ChatRequest, ResponsesRequest

USER = [{"role": "user", "content": "hello"}]


def _client(base_url: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=base_url, api_key="local", max_retries=0)


def test_chat_log_written_by_a_run_replays_identically(tmp_path: Path) -> None:
    params = {
        "model": "demo?tokens=25",
        "messages": USER,
        "stream_options": {"include_usage": True},
    }
    with serve() as server:
        run = StreamRun(ChatRequest(params, _client(server.base_url)), log=ChunkLog())
        run.run()
        with _client(server.base_url).chat.completions.create(stream=True, **params) as stream:
            original = [chunk.model_dump() for chunk in stream]
    assert run.status == "done"
    run.log.to_jsonl(tmp_path / "run.jsonl")
    with serve(streams_dir=tmp_path) as server:
        client = _client(server.base_url)
        with client.chat.completions.create(
            model="replay:run.jsonl", messages=USER, stream=True
        ) as stream:
            replayed = [chunk.model_dump() for chunk in stream]
        again = StreamRun(
            ChatRequest({"model": "replay:run.jsonl", "messages": USER}, client)
        ).run()
    assert replayed == original
    assert again.state.text == run.state.text and again.state.usage == run.state.usage


def test_responses_log_written_by_a_run_replays_identically(tmp_path: Path) -> None:
    params = {"model": "demo?tokens=12&reasoning=5", "input": "hi"}
    with serve() as server:
        run = StreamRun(ResponsesRequest(params, _client(server.base_url))).run()
    run.log.to_jsonl(tmp_path / "resp.jsonl")
    with serve(streams_dir=tmp_path) as server:
        client = _client(server.base_url)
        again = StreamRun(
            ResponsesRequest({"model": "replay:resp.jsonl", "input": "hi"}, client)
        ).run()
    assert run.status == again.status == "done"
    assert again.state.text == run.state.text and again.state.text
    assert again.state.usage == run.state.usage
