"""Numbers from outside (issue 29): every number option of every command declares its range
and refuses, before any work, what falls outside it — NaN, ±Inf, huge, negative, subnormal, not
a number at all — with one ``error:`` line naming the option and the range; and every number in
a model's config.json is finite and in range, or the config is refused naming the field."""

from __future__ import annotations

import copy
import json
import math
import typing

import pytest
import typer
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import TINY, run_cli
from tests.test_reliability import assert_one_error_line
from vadx import limits
from vadx.cli import COMMANDS, app
from vadx.cli.common import Between
from vadx.errors import ConfigError, VadxError
from vadx.files import parse_json
from vadx.models import CRNNConfig

NUMBERS = (int, float, int | None, float | None)


def number_options() -> list[tuple[str, str, str, object]]:
    """(command, parameter, its flag, its parser) of every number option of every command."""
    click_app = typer.main.get_command(app)
    found = []
    for name, command in COMMANDS.items():
        flags = {p.name: p.opts[0] for p in click_app.commands[name].params}
        for param, hint in typing.get_type_hints(command, include_extras=True).items():
            if typing.get_origin(hint) is not typing.Annotated:
                continue
            base, *meta = typing.get_args(hint)
            if base in NUMBERS:
                info = next(m for m in meta if isinstance(m, typer.models.ParameterInfo))
                found.append((name, param, flags[param], info.parser))
    return found


OPTIONS = number_options()


def test_every_number_option_declares_its_range():
    assert len(OPTIONS) > 60  # every command's, watch's 15 among them
    undeclared = [(c, flag) for c, _, flag, parser in OPTIONS if not isinstance(parser, Between)]
    assert not undeclared, f"number options without a declared range: {undeclared}"


EDGES = ["nan", "NaN", "inf", "-inf", "+Infinity", "1e400", "-1", "-0.5", "1e-320", "0"]
EDGES += ["99999999999999999999999", str(2**64), "4.5", "1_000", "", " ", "0x10", "ten"]
DRAWN = st.one_of(
    st.sampled_from(EDGES),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.integers(-(2**70), 2**70).map(str),
)


def accepted(parser: Between, text: str) -> bool:
    try:
        parser(text)
    except Exception:
        return False
    return True


# capsys is read (and so emptied) by every run_cli
@settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(option=st.sampled_from(OPTIONS), text=DRAWN)
def test_a_number_outside_an_options_range_is_refused_before_any_work(option, text, capsys):
    command, _, flag, parser = option
    if accepted(parser, text):  # in range: the parser's own property is tested below
        number = parser(text)
        assert math.isfinite(number) and parser.low <= number <= parser.high
        return
    # the option's error comes first: no argument, no model, no file is looked at
    code, _, err = run_cli([command, f"{flag}={text}"], capsys)
    assert_one_error_line(code, err, f"Invalid value for '{flag}': must be")
    assert limits.show((parser.low, parser.high)) in err


@given(text=DRAWN, kind=st.sampled_from([int, float]))
def test_the_parser_accepts_exactly_the_finite_numbers_in_range(text, kind):
    parser = Between(kind, 1, 1000)
    try:
        value = kind(text.strip())
    except ValueError:
        value = None
    expected = value is not None and math.isfinite(value) and 1 <= value <= 1000
    assert accepted(parser, text) == expected
    if expected:
        assert parser(text) == value and type(parser(text)) is kind


@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["synth", "s", "--fps", "inf"], "'--fps': must be a finite number from 0.1 to 1,000"),
        (["synth", "s", "--seed", "-1"], "'--seed': must be an integer from 0 to 4,294,967,295"),
        (["new-model", "m", "--rnn-hidden", "100000000000"], "from 1 to 16,384"),
        (["train", "d", "--lr", "inf"], "'--lr': must be a finite number from 1e-12 to 1,000"),
        (["watch", "m", "v", "--mjpeg", "70000"], "'--mjpeg': must be an integer from 0 to"),
        (["serve", "m", "--max-upload-mb", "nan"], "got 'nan'"),
        (["watch", "m", "v", "--duration", "nan"], "'--duration': must be a finite number"),
        (["watch", "m", "v", "--metrics-every", "nan"], "'--metrics-every': must be"),
    ],
)
def test_the_attackers_numbers_are_refused(argv, names, capsys):
    code, _, err = run_cli(argv, capsys)
    assert_one_error_line(code, err, names)


def test_a_model_smaller_than_its_backbone_takes_is_refused_when_made(tmp_path, capsys):
    code, _, err = run_cli(["new-model", str(tmp_path / "m"), "--size", "1"], capsys)
    assert_one_error_line(code, err, "frame_size (1, 1) is too small: vgg19 needs")
    assert not (tmp_path / "m").exists()


# ------------------------------------------------------------------------------ config.json

#: where a model config holds numbers: (section, key, index or None)
CONFIG_NUMBERS = [
    ("architecture", "rnn_hidden", None),
    ("architecture", "rnn_layers", None),
    ("architecture", "dropout", None),
    ("architecture", "head_hidden", 0),
    ("preprocessing", "num_frames", None),
    ("preprocessing", "frame_size", 0),
    ("preprocessing", "frame_size", 1),
    ("preprocessing", "mean", 2),
    ("preprocessing", "std", 0),
]
JSON_NUMBERS = st.one_of(
    st.sampled_from(["1e400", "-1e400", "NaN", "Infinity", "-Infinity", "30000", "1e-320"]),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.integers(-(2**70), 2**70).map(str),
)


@settings(max_examples=200, deadline=None)
@given(where=st.sampled_from(CONFIG_NUMBERS), literal=JSON_NUMBERS)
def test_every_number_in_a_model_config_is_finite_and_in_range_or_refused(where, literal):
    section, key, index = where
    document = copy.deepcopy(TINY.replace(mean=(0.5, 0.5, 0.5), std=(0.2, 0.2, 0.2)).to_dict())
    marker = 123456.789
    if index is None:
        document[section][key] = marker
    else:
        document[section][key][index] = marker
    text = json.dumps(document).replace(repr(marker), literal)
    try:
        config = CRNNConfig.from_dict(parse_json(text, "config.json", ConfigError))
    except VadxError as err:
        message = str(err)
        assert key in message or "config.json" in message, message
        return
    value = getattr(config, key)
    value = value if index is None else value[index]
    assert math.isfinite(value)
    if key in ("rnn_hidden", "head_hidden"):
        assert limits.UNITS[0] <= value <= limits.UNITS[1]
    if key == "frame_size":
        assert limits.FRAME_SIDE[0] <= value <= limits.FRAME_SIDE[1]


@pytest.mark.parametrize(
    ("text", "names"),
    [
        ('{"a": 1e400}', "config.json holds the number 1e400, too large for a float"),
        ('{"a": NaN}', "config.json holds NaN, which JSON does not have"),
        ("[" * 100_000 + "]" * 100_000, "config.json is nested too deeply"),
        (b'{"a": "\xff"}', "config.json is not UTF-8"),
        ('{"a": ', "config.json is not valid JSON"),
    ],
)
def test_a_json_file_is_read_as_strictly_as_the_standard(text, names):
    with pytest.raises(ConfigError, match=names):
        parse_json(text, "config.json", ConfigError)


def test_info_refuses_a_config_with_a_huge_frame(tmp_path, capsys):
    from vadx.models import CRNN, save_model

    path = save_model(CRNN(TINY), tmp_path / "m")
    document = json.loads((path / "config.json").read_text())
    document["model"]["preprocessing"]["frame_size"] = [30000, 30000]
    (path / "config.json").write_text(json.dumps(document))
    code, _, err = run_cli(["info", str(path)], capsys)
    assert_one_error_line(code, err, "frame_size must be an integer from 1 to 4,096, got 30000")
