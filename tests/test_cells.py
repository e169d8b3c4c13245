"""Inserting an answer as a new cell: which source the cell gets, and the real kernel payload."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from kernel_session import KernelSession

from nbstream.frontend.cells import cell_source, code_blocks

ANSWER = """# Two ways

Count with a loop:

```python
for i in range(3):
    print(i)
```

Or in the shell:

```bash
seq 0 2
```
"""


def test_code_blocks_are_found_in_order_with_their_language():
    assert code_blocks(ANSWER) == [
        ("python", "for i in range(3):\n    print(i)\n"),
        ("bash", "seq 0 2\n"),
    ]


def test_a_fence_inside_a_list_and_an_unclosed_fence_are_code_blocks_too():
    text = "- step:\n\n  ```\n  x = 1\n  ```\n\n```js\nlet y"
    assert code_blocks(text) == [("", "x = 1\n"), ("js", "let y")]


def test_cell_source_whole_answer_and_one_block():
    assert cell_source(ANSWER) == "%%markdown\n" + ANSWER
    assert cell_source(ANSWER, format="text") == ANSWER
    assert cell_source(ANSWER, code_block=0) == "for i in range(3):\n    print(i)"
    assert cell_source(ANSWER, code_block=-1) == "seq 0 2"


def test_missing_code_block_says_what_to_do():
    with pytest.raises(ValueError, match="has 2 code block"):
        cell_source(ANSWER, code_block=2)
    with pytest.raises(ValueError, match="no code block: call insert_cell\\(\\) without"):
        cell_source("just prose", code_block=0)


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    session = KernelSession(tmp_path_factory.mktemp("cells"))
    try:
        yield session
    finally:
        session.close()


def _next_inputs(execution) -> list[str]:
    return [p["text"] for p in execution.payloads if p.get("source") == "set_next_input"]


def test_view_insert_cell_sends_the_code_block_to_the_frontend(kernel: KernelSession):
    kernel.ok("import nbstream")
    kernel.ok(f"view = nbstream.stream(iter([{ANSWER[:40]!r}, {ANSWER[40:]!r}]), display=False)")
    assert kernel.value("view.status") == "done"
    run = kernel.ok("view.insert_cell(code_block=0)")
    assert _next_inputs(run) == ["for i in range(3):\n    print(i)"]
    run = kernel.ok("view.insert_cell()")
    assert _next_inputs(run) == ["%%markdown\n" + ANSWER]


def test_insert_cell_outside_a_kernel_says_to_run_it_in_a_cell():
    from nbstream.frontend.cells import insert_cell

    with pytest.raises(RuntimeError, match="run it in a cell"):
        insert_cell("x = 1")
