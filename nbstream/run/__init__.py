"""Stage 2, run: drive one source to its end.

``stream_run`` reads a source's events, keeps the answer's state (``state``), writes every raw
chunk to the chunk log (``log``) and times it (``metrics``). Nothing here knows about widgets or
notebooks; the resilience layer and the frontend build on it.
"""
