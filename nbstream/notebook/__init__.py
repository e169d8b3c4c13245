"""Stage 5, the notebook surface: what a notebook user calls.

``api`` (``nbstream.stream`` / ``nbstream.chat``), ``magic`` (``%%stream``), ``compare`` (several
streams side by side), and their helpers: ``interpolate`` (``{name}`` in prompts),
``conversations`` (``--chat NAME``). (Inserting an answer as a cell is ``frontend.cells``:
``StreamView.insert_cell`` uses it, and the frontend stage imports nothing from this one.)
"""
