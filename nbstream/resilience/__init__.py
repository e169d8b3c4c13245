"""Stage 3, resilience: what turns a run into one that survives the network and the model.

Retries before the first token (``retry``), rate limits (``ratelimit``), stalls (``stall``),
``on_chunk`` hooks and budgets (``hooks``, ``budget``), Resume (``resume``), errors in words
(``errors``); ``layer`` plugs them into a :class:`~nbstream.run.stream_run.StreamRun`.
"""
