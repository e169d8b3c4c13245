"""Notebook cell sources for browser tests of nbstream's widget.

The local LLM server runs in the pytest process; the kernel inside JupyterLab reaches it over
127.0.0.1 through the base URL written into the setup cell. Requests carry the server's options
(pacing, token counts) in ``extra_body={"nbstream": {...}}``.
"""

from __future__ import annotations

PROMPT = "Explain streaming in notebooks"


def setup_cell(base_url: str) -> str:
    """Imports, a sync and an async client for the local server, and ``ask(...)`` shortcuts."""
    return f"""
import openai, nbstream
BASE_URL = {base_url!r}
sync_client = openai.OpenAI(base_url=BASE_URL, api_key="sk-local-test", max_retries=0)
async_client = openai.AsyncOpenAI(base_url=BASE_URL, api_key="sk-local-test", max_retries=0)

def ask(prompt={PROMPT!r}, *, client=async_client, model="demo", **options):
    '''A re-runnable request with the local server's options (pacing, tokens, faults).'''
    from nbstream.sources.request import ChatRequest
    return ChatRequest(
        {{"model": model, "messages": [{{"role": "user", "content": prompt}}],
          "extra_body": {{"nbstream": options}}}},
        client,
    )
print("ready")
""".strip()
