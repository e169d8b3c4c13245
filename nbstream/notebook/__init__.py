"""Stage 5, the notebook surface: what a notebook user calls.

``api`` (``nbstream.stream`` / ``nbstream.chat``), ``magic`` (``%%stream``), ``compare`` (several
streams side by side), and their helpers: ``interpolate`` (``{name}`` in prompts),
``conversations`` (``--chat NAME``), ``cells`` (insert an answer as a cell).
"""
