"""%%stream in a real kernel: loading, help, %config, and usage errors instead of tracebacks."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kernel_session import KernelSession


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KernelSession]:
    session = KernelSession(tmp_path_factory.mktemp("magic-usage"))
    try:
        session.ok("%load_ext nbstream")
        yield session
    finally:
        session.close()


def test_help_lists_every_option(kernel: KernelSession) -> None:
    result = kernel.ok("%%stream?\n")
    page = "\n".join(result.pages)
    for option in (
        "--model",
        "-n N",
        "--system",
        "--temperature",
        "--max-tokens",
        "--format",
        "--base-url",
        "--api",
        "--out",
        "--chat",
        "--show",
        "--reset",
        "--background",
        "--replay",
        "--log",
    ):
        assert option in page, option
    # the help reads as text: no reST marker ("::") before the usage line (issue 12 §6)
    docstring = page[page.index("Docstring:") :].split("\n", 1)[1].lstrip()
    assert not docstring.startswith("::"), docstring[:80]
    assert docstring.startswith("%stream [-m MODEL]"), docstring[:80]


def test_load_ext_twice_keeps_one_configurable(kernel: KernelSession) -> None:
    kernel.ok("%load_ext nbstream")
    kernel.ok("%reload_ext nbstream")
    count = kernel.value("sum(type(c).__name__ == 'Stream' for c in get_ipython().configurables)")
    assert count == 1


def test_config_sets_defaults_and_rejects_bad_values(kernel: KernelSession) -> None:
    kernel.ok('%config Stream.model = "demo"\n%config Stream.temperature = 0.3')
    settings = "get_ipython().magics_manager.registry['StreamMagics'].settings"
    assert kernel.value(f"{settings}.model") == "demo"
    assert kernel.value(f"{settings}.temperature") == 0.3
    listing = kernel.ok("%config Stream").stdout
    assert "Stream.model" in listing and "Stream.background" in listing
    bad = kernel.run('%config Stream.format = "html"')
    assert "html" in (bad.evalue or "") + bad.stderr
    kernel.ok("%config Stream.model = None\n%config Stream.temperature = None")


@pytest.mark.parametrize(
    ("cell", "message"),
    [
        ("%%stream -n 0\nhi", "-n must be at least 1"),
        ("%%stream --temperature 9\nhi", "between 0 and 2"),
        ("%%stream --format html\nhi", "invalid choice: 'html'"),
        ("%%stream --frobnicate\nhi", "unrecognized arguments: --frobnicate"),
        ("%%stream --out 9lives\nhi", "not a valid Python name"),
        ("%%stream -m a -m b --chat t\nhi", "--chat continues one conversation"),
        ("%%stream -s Be terse\nhi", "unexpected text after the options: 'terse'"),
        ("%stream --replay missing.jsonl", "no log file at 'missing.jsonl'"),
        ("%stream -m demo", "empty prompt"),
        ("%%stream\nTell me about {undefined_topic}", "name 'undefined_topic' is not defined"),
        ("%%stream\nA stray { brace", "malformed braces"),
    ],
)
def test_bad_input_is_a_usage_error_not_a_traceback(
    kernel: KernelSession, cell: str, message: str
) -> None:
    result = kernel.run(cell)
    assert result.status == "error"
    assert result.ename == "UsageError", (result.ename, result.evalue)
    assert message in (result.evalue or "")
    assert result.traceback == []
    assert "Traceback" not in result.stderr


def test_interpolation_error_says_nothing_was_sent(kernel: KernelSession) -> None:
    result = kernel.run("%%stream -m demo\nSummarize {missing_article} in {{3}} lines")
    assert result.ename == "UsageError"
    assert "Nothing was sent" in (result.evalue or "")
    assert "{{" in (result.evalue or "")


def test_show_and_reset_of_an_empty_conversation(kernel: KernelSession, tmp_path: Path) -> None:
    shown = kernel.ok("%stream --chat notes --show")
    assert "Conversation 'notes': 0 exchange(s)" in shown.plain
    listing = kernel.ok("%stream --show")
    assert "Conversation 'notes'" in listing.plain
    kernel.ok("%stream --reset")
    assert "No conversations yet" in kernel.ok("%stream --show").plain
