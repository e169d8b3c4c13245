"""Stage 4, frontend: what the notebook's page sees of a run.

``widget`` is the anywidget face (traits, public methods, message dispatch); ``publisher`` keeps
what the frontend has and sends frames (batched by ``coalesce``) and snapshots, typed by
``protocol``; ``runner`` runs a view's answers (blocking, task, thread) and waits for them, the one
way a waiting cell runs; ``output`` writes an answer's cell outputs with the safe ``static_copy``
for readers without a kernel; ``cells`` inserts an answer as a new cell; ``hosts`` tells which
frontend runs the code. Nothing here imports ``nbstream.notebook``.
"""
