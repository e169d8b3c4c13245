"""Stage 4, frontend: what the notebook's page sees of a run.

``widget`` is the anywidget face (traits, messages, buttons); ``coalesce`` batches deltas into
frames and ``protocol`` types the messages; ``output`` writes an answer's cell outputs with the
safe ``static_copy`` for readers without a kernel; ``hosts`` tells which frontend runs the code.
"""
