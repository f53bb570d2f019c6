"""What the command modules share: the consoles, the arguments and options several commands
take, progress bars, and the reading of options given as text. Nothing here imports torch:
``vadx --help`` stays light."""

from __future__ import annotations

import contextlib
import functools
import inspect
import math
import os
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import typer
from pydantic_core import PydanticCustomError
from rich.console import Console
from rich.text import Text

from vadx import limits
from vadx.catalogue import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHOD_NAMES, TEMPORAL_NAMES
from vadx.errors import VadxError
from vadx.settings import DetectConfig


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """``vadx … | head``: the reader closed the pipe, having what it wanted; not an error
        (rich's own exits with status 1)."""
        self.quiet = True
        os.dup2(os.open(os.devnull, os.O_WRONLY), self.file.fileno())
        raise SystemExit(0)


console = _Console()
err_console = _Console(stderr=True)

ModelPath = Annotated[
    Path, typer.Argument(help="Checkpoint directory (config.json + model.safetensors).")
]
VideosArgument = Annotated[
    list[Path] | None,
    typer.Argument(
        help="A video file (or a folder of frames); several, or folders searched for videos, "
        "make a batch.",
        show_default=False,
        metavar="VIDEO",
    ),
]
ListOption = Annotated[
    Path | None,
    typer.Option("--list", help="A batch's videos: a file naming one per line (relative to it)."),
]
ForceOption = Annotated[
    bool, typer.Option("--force", help="Batch: redo every video, even those already complete.")
]
NormalOption = Annotated[
    Path | None,
    typer.Option(
        "--normal",
        help="Beside the classifier, this camera's normality model (vadx learn-normal): a "
        "second signal, unusual for this camera, with its own events.",
        show_default=False,
    ),
]


def load_normal(model: Path, normal: Path | None):
    """The normality model ``--normal`` names, beside the classifier ``model`` (None when not
    given); anything else is one clear error."""
    if normal is None:
        return None
    from vadx.errors import InputError
    from vadx.normality import is_normality, load_normality

    if is_normality(model):
        raise InputError(
            f"--normal goes beside a classifier, and {model} is a normality model already"
        )
    if not is_normality(normal):
        raise InputError(
            f"--normal {normal}: not a normality model (make one with vadx learn-normal)"
        )
    return load_normality(normal)


class Between:
    """The parser of a number option: an ``int`` or a finite ``float`` from ``low`` to
    ``high``. Anything else is refused before any work, naming the option and the range:
    ``Invalid value for '--fps': must be a finite number from 0.1 to 1000, got 'nan'``."""

    def __init__(self, kind: type[int] | type[float], low: float, high: float) -> None:
        self.kind, self.low, self.high = kind, low, high

    def span(self) -> str:
        return limits.show((self.low, self.high))

    def describe(self) -> str:
        return ("an integer" if self.kind is int else "a finite number") + f" from {self.span()}"

    def __call__(self, value: Any) -> int | float | None:
        if value is None or (isinstance(value, self.kind) and not isinstance(value, bool)):
            number = value  # a default, or a value given in Python
        else:
            try:
                number = self.kind(str(value).strip())
            except ValueError:
                number = None
            if number is None:
                self._refuse(value)
        if number is not None and not (math.isfinite(number) and self.low <= number <= self.high):
            self._refuse(value)
        return number

    def _refuse(self, value: Any) -> None:
        text = repr(value if isinstance(value, str) else str(value))[:40]
        raise PydanticCustomError(
            "number", "must be {range}, got {value}", {"range": self.describe(), "value": text}
        )


def number(
    help: str, low: float, high: float, *names: str, kind: type[int] | type[float] = int
) -> Any:
    """A number option (``kind``: int or float) that accepts ``low`` … ``high`` only, the
    range said in its help."""
    parser = Between(kind, low, high)
    return typer.Option(*names, parser=parser, help=f"{help} ({parser.span()})")


#: the largest frame count, frame index or window a number option takes
MOST_FRAMES = 10**9
#: seeds are 32-bit, as NumPy's and every worker's
MOST_SEED = 2**32 - 1

StrideOption = Annotated[int | None, number("Frames between window starts.", 1, MOST_FRAMES)]
StepOption = Annotated[int | None, number("Frames between a window's frames.", 1, 10_000)]
FIT = typer.Option(
    help="How frames reach the model's size: pad (letter-box), crop (centre) or stretch "
    "(aspect ignored, as the reference's Keras generator). Saved in the model."
)
FitOption = Annotated[str, FIT]

# detection's, which watch shares; their defaults are DetectConfig's
DETECT = DetectConfig()
SmoothOption = Annotated[int, number("Frames of score smoothing.", 1, 10_000)]
OnOption = Annotated[float, number("Anomaly score that starts an event.", 0, 1, kind=float)]
OffOption = Annotated[float, number("Anomaly score that ends it.", 0, 1, kind=float)]
MinFramesOption = Annotated[int, number("Shortest event, in frames.", 1, MOST_FRAMES)]
DomainOption = Annotated[
    str,
    typer.Option(
        help="Windows unlike the model's training data: flag them (events carry the flag), "
        "suppress their alerts, or off (no check).",
    ),
]
PerClassOption = Annotated[
    bool, typer.Option(help="One hysteresis per anomaly class instead of one on the score.")
]

#: detection's options as detect and watch take them: name → (annotation, default)
DETECTION_OPTIONS = {
    "stride": (StrideOption, None),
    "step": (StepOption, None),
    "smooth": (SmoothOption, DETECT.smooth),
    "on": (OnOption, DETECT.on),
    "off": (OffOption, DETECT.off),
    "min_frames": (MinFramesOption, DETECT.min_frames),
    "per_class": (PerClassOption, DETECT.per_class),
    "domain": (DomainOption, DETECT.domain),
}


def with_detection_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """``command`` with detection's options (:data:`DETECTION_OPTIONS`) in place of its
    ``detection`` parameter, which receives them as one ``DetectConfig``: the options are
    declared once, for every command that detects."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    for parameter in signature.parameters.values():
        if parameter.name != "detection":
            parameters.append(parameter)
            continue
        parameters += [
            inspect.Parameter(name, parameter.kind, default=default, annotation=annotation)
            for name, (annotation, default) in DETECTION_OPTIONS.items()
        ]

    @functools.wraps(command)
    def wrapper(**given: Any) -> Any:
        options = {name: given.pop(name) for name in DETECTION_OPTIONS}
        return command(**given, detection=DetectConfig(**options))

    wrapper.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    wrapper.__annotations__ = {p.name: p.annotation for p in parameters}
    del wrapper.__wrapped__  # typer reads this signature, not the command's
    return wrapper


# the explanation's, which watch shares
METHODS_DEFAULT, TEMPORAL_DEFAULT = ",".join(DEFAULT_METHODS), ",".join(DEFAULT_TEMPORAL)
MethodsOption = Annotated[
    str, typer.Option(help=f"Spatial methods, comma-separated ({', '.join(METHOD_NAMES)}).")
]
TemporalOption = Annotated[
    str,
    typer.Option(
        help=f"Temporal estimators, comma-separated ({', '.join(TEMPORAL_NAMES)}); empty for none."
    ),
]
ViewOption = Annotated[
    str, typer.Option(help="heatmap, contour (the reference's) or contours (25/50/75 %).")
]


def say(prefix: str, style: str, text: str) -> None:
    """One line on stderr: ``prefix`` (``error: ``, ``warning: ``) in ``style``, then ``text``."""
    err_console.print(Text.assemble((prefix, style), text), soft_wrap=True)


def say_domain(summary: dict, model, mode: str) -> None:
    """Tell the operator, on stderr, when footage is outside the model's domain (or unchecked)."""
    from vadx.detect.domain import missing_note, verdict_line

    if mode == "off":
        return
    if not summary.get("checked"):
        err_console.print(f"note: {missing_note(model)}", soft_wrap=True)
        return
    line = verdict_line(summary)
    if line is not None:
        done = "their alerts were suppressed" if mode == "suppress" else "events there are flagged"
        err_console.print(f"[bold yellow]warning:[/] {line}; {done}", soft_wrap=True)


@contextlib.contextmanager
def progress_bar(description: str):
    """A progress bar on stderr (none where stderr is not a terminal: a log would get its
    last frame as an empty bar); yields ``advance(done, total, stage=None)`` — the stage
    (``frames``, a method's name, …) shown beside ``description``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (description, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    # under torchrun only rank 0 draws: the others' bars would overwrite it
    hidden = not err_console.is_terminal or os.environ.get("RANK", "0") != "0"
    with Progress(*columns, console=err_console, disable=hidden) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int, stage: str | None = None) -> None:
            named = description if stage is None else f"{description}: {stage}"
            bar.update(task, completed=done, total=total, description=named)

        yield advance


@contextlib.contextmanager
def training_progress():
    """Bars for epochs and for the steps of the current epoch, with loss and accuracy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[info]}"),
    )
    with Progress(*columns, console=err_console, disable=not err_console.is_terminal) as bars:
        epochs = bars.add_task("epochs", total=None, info="")
        steps = bars.add_task("train", total=None, info="")

        def update(phase: str, done: int, total: int, info: dict) -> None:
            if phase == "epoch":
                text = (
                    f"loss {info['train_loss']:.3f}  val acc {info['val_accuracy']:.1%}  "
                    f"F1 {info['val_macro_f1']:.3f}  {info['clips_per_second']:.1f} clips/s"
                )
                bars.update(epochs, completed=done, total=total, info=text)
            else:
                text = f"loss {info['loss']:.3f} acc {info['accuracy']:.1%}" if info else ""
                bars.update(steps, description=phase, completed=done, total=total, info=text)

        yield update


def ranks():
    """Under torchrun, the ``with`` block joined to the other ranks (gloo: only Python objects
    travel), this rank's threads sized to its part of the cores; yields this process's rank (0
    for one process, which joins nothing)."""
    from datetime import timedelta

    from vadx import distributed

    # ranks may end hours apart
    return distributed.joined(backend="gloo", timeout=timedelta(days=30))


def explain_settings(methods: str, temporal: str, target: str = "predicted", **options):
    """The explanation settings of options given as text: comma-separated method and
    estimator names, a target that is a class name or index; ``options`` as they are."""
    from vadx.explanations.clip import ExplainSettings, parse_target

    def names(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())

    return ExplainSettings(
        methods=names(methods), temporal=names(temporal), target=parse_target(target), **options
    )


def int_list(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise VadxError(f"{option} takes comma-separated integers, got {text!r}") from err


def freeze_value(text: str) -> str | int:
    if text in ("none", "all"):
        return text
    if text.isdigit():
        return int(text)
    raise VadxError(f"--freeze takes none, all or a number of trainable units, got {text!r}")
