"""Option parsing of %%stream without a kernel: line splitting and the checks on combinations."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError

from nbstream.notebook.magic import Stream, StreamMagics, check, split_line

PARSER = StreamMagics.stream.parser
TAKES_VALUE = {o: a.nargs != 0 for a in PARSER._actions for o in a.option_strings}


def parse(line: str, config: Stream | None = None):
    argv, prompt = split_line(line, TAKES_VALUE)
    return check(PARSER.parse_args(argv), config or Stream()), prompt


def test_free_text_prompt_with_apostrophes_follows_the_options() -> None:
    inv, prompt = parse("-m demo -t 0.5 What's the weather like?")
    assert inv.models == ["demo"] and inv.temperature == 0.5
    assert prompt == "What's the weather like?"


def test_quoted_option_values_keep_their_spaces() -> None:
    inv, prompt = parse("-s 'You are terse.' --out=answer Say hi")
    assert inv.system == "You are terse."
    assert inv.out == "answer"
    assert prompt == "Say hi"


def test_double_dash_starts_the_prompt_even_if_it_looks_like_an_option() -> None:
    inv, prompt = parse("-m demo -- -n is a flag, explain it")
    assert prompt == "-n is a flag, explain it" and inv.n == 1


def test_repeated_models_and_samples_make_columns() -> None:
    inv, _ = parse("-m a -m b -n 3")
    assert inv.models == ["a", "b"] and inv.columns == 6


def test_config_gives_defaults_and_options_win() -> None:
    config = Stream(model="cfg-model", temperature=0.2, format="text", api="responses")
    inv, _ = parse("", config)
    assert (inv.models, inv.temperature, inv.format, inv.api) == (
        ["cfg-model"],
        0.2,
        "text",
        "responses",
    )
    inv, _ = parse("-m other -t 1 -f code --api chat", config)
    assert (inv.models, inv.temperature, inv.format, inv.api) == (["other"], 1.0, "code", "chat")


def test_background_default_from_config_and_wait_overrides_it() -> None:
    config = Stream(background=True)
    assert parse("", config)[0].background is True
    assert parse("--wait", config)[0].background is False
    assert parse("-b")[0].background is True


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("-n 0", "-n must be at least 1"),
        ("-t 3", "between 0 and 2"),
        ("--max-tokens 0", "--max-tokens must be at least 1"),
        ("--out 2x", "not a valid Python name"),
        ("--out class", "not a valid Python name"),
        ("--speed -1", "--speed must be 0"),
        ("-m a -m b --chat c", "--chat continues one conversation"),
        ("-n 2 --log x.jsonl", "--log saves one stream's log"),
        ("-b --wait", "contradict"),
        ("-n 17", "too many"),
        ("--replay /no/such/file.jsonl", "no log file"),
        ("-f html", "invalid choice"),
        ("--api completions", "invalid choice"),
        ("-t warm", "invalid float value"),
        ("--nope", "unrecognized arguments"),
        ("-s 'unbalanced", "unbalanced quote"),
    ],
)
def test_bad_options_are_usage_errors_that_say_what_is_wrong(line: str, message: str) -> None:
    with pytest.raises(UsageError, match=None) as info:
        parse(line)
    assert message in str(info.value)
