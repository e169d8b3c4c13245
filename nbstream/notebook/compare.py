"""Several streams side by side in one output: ``nbstream.compare(...)`` and ``%%stream -m A -m B``.

Each column is an ordinary :class:`~nbstream.frontend.widget.StreamView` (its own Stop, Regenerate,
metrics and chunk log); this module only starts them together, lays them out in a grid and waits
for all of them. The streams run concurrently: as tasks on the kernel's event loop in background
mode (so many of them stay responsive), or each on its own thread while a waiting cell blocks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Generator, Sequence
from typing import TYPE_CHECKING, Any, Literal

from nbstream.frontend import output, static_copy
from nbstream.frontend.runner import start_detached, wait_all, wait_in_cell

if TYPE_CHECKING:
    from nbstream.frontend.widget import StreamView
    from nbstream.run.log import ChunkLog
    from nbstream.run.metrics import Metrics
    from nbstream.sources import SourceLike

Format = Literal["markdown", "text", "code"]


class Comparison:
    """Streams shown side by side. ``.views`` are the columns, ``.texts`` their answers.

    ``stop()`` stops every column; ``wait()`` (or ``await comparison``) waits for all of them.
    """

    def __init__(self, views: Sequence[StreamView], labels: Sequence[str]) -> None:
        if len(views) != len(labels):
            raise ValueError("one label per view")
        self.views = list(views)
        self.labels = list(labels)
        self.widget = _grid(self.views, self.labels)
        self._outputs = output.CellOutputs(self.widget, self._columns(), self._answer_output)
        for view in self.views:
            view._outputs.on_update(self._outputs.update)

    @property
    def texts(self) -> list[str]:
        """Each column's answer so far, in column order."""
        return [view.text for view in self.views]

    @property
    def statuses(self) -> list[str]:
        """Each column's status (``streaming``, ``done``, ``stopped``...)."""
        return [view.status for view in self.views]

    @property
    def logs(self) -> list[ChunkLog | None]:
        """Each column's chunk log."""
        return [view.log for view in self.views]

    @property
    def metrics(self) -> list[Metrics | None]:
        """Each column's metrics (time to first token, tokens per second, usage...)."""
        return [view.metrics for view in self.views]

    def stop(self, reason: str = "stopped by user") -> None:
        """Stop every column that is still streaming; their partial answers are kept."""
        for view in self.views:
            view.stop(reason)

    def wait(self, timeout: float | None = None) -> list[str]:
        """Block until every column has ended; the interrupt button (■) stops them all."""
        wait_all(self.views, timeout)
        return self.texts

    async def wait_async(self) -> list[str]:
        """Wait for every column without blocking the event loop (Stop clicks still arrive)."""
        await asyncio.gather(*(view.wait_async() for view in self.views))
        return self.texts

    def __await__(self) -> Generator[Any, None, Comparison]:
        yield from self.wait_async().__await__()
        return self

    def __len__(self) -> int:
        return len(self.views)

    def __getitem__(self, index: int) -> StreamView:
        return self.views[index]

    def __repr__(self) -> str:
        columns = ", ".join(
            f"{label}: {view.status}, {len(view.text)} chars"
            for label, view in zip(self.labels, self.views, strict=True)
        )
        return f"<Comparison of {len(self.views)} streams: {columns}>"

    def _answer_output(self) -> output.Bundle:
        """Every column's answer under its label (:mod:`nbstream.frontend.output`)."""
        html, plain = [], []
        for label, view in zip(self.labels, self.views, strict=True):
            answer = static_copy.answer_html(
                view.static_parts(), format=view.format, language=view.language
            )
            html.append(f"<h4>{_escape(label)}</h4>{answer}")
            plain.append(f"== {label} ==\n{view.static_plain()}")
        pairs = zip(self.labels, self.views, strict=True)
        answers = [view.saved_answer(label) for label, view in pairs]
        body = static_copy.clean_html("<hr>".join(html))
        return output.answer_output(self.widget, answers, body, "\n\n".join(plain))

    def _ipython_display_(self) -> None:
        """``display(comparison)``: the grid and the answers (unless this cell shows them)."""
        if self._outputs.shown_in_this_cell():
            return
        self._outputs.show(waiting=False)

    def _repr_mimebundle_(self, **kwargs: Any) -> dict[str, Any]:
        data, _metadata = output.live_output(self.widget, self._columns())
        return data

    def _columns(self) -> list[dict[str, str]]:
        pairs = zip(self.labels, self.views, strict=True)
        return [{"uid": view.uid, "label": label} for label, view in pairs]


def labels_for(models: Sequence[str | None], default: str = "default model") -> list[str]:
    """Column titles: the model name, numbered when a model appears more than once."""
    names = [m or default for m in models]
    counts = {name: names.count(name) for name in names}
    seen: dict[str, int] = {}
    labels = []
    for name in names:
        seen[name] = seen.get(name, 0) + 1
        labels.append(f"{name} #{seen[name]}" if counts[name] > 1 else name)
    return labels


def _grid(views: Sequence[Any], labels: Sequence[str]) -> Any:
    import ipywidgets as widgets

    columns = []
    for label, view in zip(labels, views, strict=True):
        title = widgets.HTML(value=f"<b>{_escape(label)}</b>")
        columns.append(
            widgets.VBox([title, view], layout=widgets.Layout(min_width="0", overflow="hidden"))
        )
    return widgets.GridBox(
        columns,
        layout=widgets.Layout(
            grid_template_columns=f"repeat({min(len(views), 3)}, minmax(0, 1fr))",
            grid_gap="8px",
            width="100%",
        ),
    )


def _escape(text: str) -> str:
    import html

    return html.escape(text, quote=True)


# Columns of one comparison, at most. Each column is a live widget and a stream at once (a thread
# each while the cell waits); past a dozen or so the columns are too narrow to read, and hundreds
# would open hundreds of requests in one go. A cap refuses that before anything starts (a
# concurrency limit would still build every widget). Compare in batches for more.
MAX_COLUMNS = 16


def compare(
    prompt: str | Sequence[dict[str, Any]] | None = None,
    *,
    models: Sequence[str | None] | None = None,
    n: int = 1,
    sources: Sequence[SourceLike] | None = None,
    labels: Sequence[str] | None = None,
    api: Literal["chat", "responses"] = "chat",
    system: str | None = None,
    client: object | None = None,
    format: Format = "markdown",  # noqa: A002 - the option's natural name
    background: bool = False,
    display: bool = True,
    **params: Any,
) -> Comparison:
    """Stream several answers side by side and return the :class:`Comparison`.

    Either a ``prompt`` (a string or messages) asked of every model in ``models``, ``n`` times
    each (``compare("Explain SSE", models=["gpt-4o-mini", "gpt-4.1-mini"])``), or ready-made
    ``sources`` (anything ``nbstream.stream`` accepts: requests, callables, iterables, logs).
    Extra ``params`` (``temperature=0.7``...) go to every request. ``background=False`` waits
    for every column; ``True`` returns at once (then ``await comparison`` or ``.wait()`` later).
    At most ``MAX_COLUMNS`` (16) columns (models x n, or sources): more is a ``ValueError``.
    """
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    starters: list[Callable[[], Any]] = []
    if sources is not None:
        if prompt is not None or models is not None:
            raise TypeError("compare() takes a prompt (with models) or sources, not both")
        sources = list(sources)
        if not sources:
            raise ValueError("compare() needs at least one source")
        if len(sources) > MAX_COLUMNS:
            raise ValueError(
                f"compare() shows at most {MAX_COLUMNS} columns side by side; got "
                f"{len(sources)} sources. Compare in batches."
            )
        if n != 1:
            raise ValueError("n applies to a prompt; with sources, pass one source per column")
        starters.extend(_stream_starter(source, format) for source in sources)
        default_labels = [f"stream {i + 1}" for i in range(len(starters))]
    else:
        if prompt is None:
            raise TypeError(
                "compare() needs a prompt and models, e.g. "
                "compare('Explain SSE', models=['demo', 'echo']), or sources=[...]"
            )
        if isinstance(models, str):
            raise TypeError(
                f"compare() takes models as a list, e.g. models=[{models!r}], not a string"
            )
        if models is not None and len(models) == 0:
            raise ValueError(
                "compare() got models=[]: give at least one model, e.g. "
                "models=['gpt-4o-mini', 'gpt-4.1-mini'] (or 'demo', 'echo' on the local "
                "server), or leave models out to ask the default model"
            )
        chosen = list(models) if models is not None else [None]
        if len(chosen) * n > MAX_COLUMNS:
            raise ValueError(
                f"compare() shows at most {MAX_COLUMNS} columns side by side; "
                f"{len(chosen)} model(s) x n={n} would be {len(chosen) * n}. "
                "Compare in batches of a few models."
            )
        columns = [m for m in chosen for _ in range(n)]
        for model in columns:
            starters.append(
                _chat_starter(prompt, model, api, system, client, format, params),
            )
        default_labels = labels_for(columns)
    titles = list(labels) if labels is not None else default_labels
    if len(titles) != len(starters):
        raise ValueError(f"{len(starters)} columns but {len(titles)} labels")

    if background:
        board = Comparison([start() for start in starters], titles)
        if display:
            board._outputs.show(waiting=False)
        return board
    # each column on its own thread, so they stream concurrently while this cell waits
    board = Comparison([start_detached(start) for start in starters], titles)
    wait_in_cell(board.views, board._outputs if display else None)
    return board


def _stream_starter(source: Any, format: Format) -> Callable[[], Any]:  # noqa: A002
    import nbstream

    return lambda: nbstream.stream(source, format=format, background=True, display=False)


def _chat_starter(
    prompt: Any,
    model: str | None,
    api: Literal["chat", "responses"],
    system: str | None,
    client: Any,
    format: Format,  # noqa: A002
    params: dict[str, Any],
) -> Callable[[], Any]:
    import nbstream

    return lambda: nbstream.chat(
        prompt,
        model=model,
        api=api,
        system=system,
        client=client,
        format=format,
        background=True,
        display=False,
        **params,
    )
