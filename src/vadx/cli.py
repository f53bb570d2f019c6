"""The ``vadx`` command.

Every command reports bad input as one ``error: …`` line on stderr and exits with status 2;
nothing prints a traceback from inside a library.
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vadx._version import __version__
from vadx.errors import VadxError

app = typer.Typer(
    name="vadx",
    help="Detect anomalies in video with a CNN+RNN and explain every decision.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
console = Console()
err_console = Console(stderr=True)

ModelPath = Annotated[
    Path, typer.Argument(help="Checkpoint directory (config.json + model.safetensors).")
]


def _version(value: bool) -> None:
    if value:
        import torch

        console.print(f"vadx {__version__} (torch {torch.__version__})")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", "-V", callback=_version, is_eager=True, help="Show the version."),
    ] = False,
) -> None:
    """Detect anomalies in video with a CNN+RNN and explain every decision."""


@app.command()
def info(
    model: ModelPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    layers: Annotated[bool, typer.Option("--layers", help="List the hookable layers.")] = False,
) -> None:
    """Describe a saved model: architecture, parameters per part, classes, preprocessing."""
    from vadx.models import load_model
    from vadx.summary import describe_model

    loaded = load_model(model)
    description = describe_model(loaded)
    if as_json:
        if layers:
            description["layers"] = loaded.layer_names()
        typer.echo(json.dumps(description, indent=2))
        return
    from vadx.summary import render_description

    render_description(description, console)
    if layers:
        table = Table("layer", "module", title="Hookable backbone layers (aliases first)")
        for alias, canonical in loaded.layer_names().items():
            table.add_row(alias, canonical)
        console.print(table)


@app.command("new-model")
def new_model(
    out: Annotated[Path, typer.Argument(help="Checkpoint directory to write.")],
    backbone: Annotated[str, typer.Option(help="Per-frame CNN (see `vadx backbones`).")] = "vgg19",
    width: Annotated[
        float | None, typer.Option(help="VGG19 channel multiplier (1.0 = reference).")
    ] = None,
    classes: Annotated[str, typer.Option(help="Comma-separated class names.")] = (
        "fight,shooting,fire,normal"
    ),
    normal: Annotated[
        str, typer.Option(help="The class meaning 'no anomaly' ('' if none).")
    ] = "normal",
    pooling: Annotated[str, typer.Option(help="Per-frame global pooling: avg or max.")] = "avg",
    rnn: Annotated[str, typer.Option(help="gru or lstm.")] = "gru",
    rnn_hidden: Annotated[int, typer.Option(help="Units of the recurrent layer.")] = 1024,
    head: Annotated[str, typer.Option(help="Hidden widths of the MLP head, comma-separated.")] = (
        "512,128"
    ),
    frames: Annotated[int, typer.Option(help="Clip length T.")] = 20,
    size: Annotated[int, typer.Option(help="Frame side in pixels (square frames).")] = 112,
    freeze: Annotated[
        str,
        typer.Option(help="Backbone freezing: none, all, or N (keep the last N units trainable)."),
    ] = "none",
    weights: Annotated[
        str | None,
        typer.Option(
            help="Backbone weights: a file, an http(s) URL (downloaded once into torch.hub's "
            "cache), or 'imagenet' for the weights a backbone ships (EfficientNet-Lite0)."
        ),
    ] = None,
    sha256: Annotated[
        str | None, typer.Option(help="Expected sha256 (or prefix) of the weights file.")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
) -> None:
    """Create a model (reference settings by default) and save it as a checkpoint."""
    import torch

    from vadx.models import CRNN, CRNNConfig, load_backbone_weights, save_model

    backbone_args = {} if width is None else {"width": width}
    config = CRNNConfig(
        class_names=tuple(c.strip() for c in classes.split(",")),
        normal_class=normal or None,
        backbone=backbone,
        backbone_args=backbone_args,
        pooling=pooling,  # type: ignore[arg-type]
        rnn=rnn,  # type: ignore[arg-type]
        rnn_hidden=rnn_hidden,
        head_hidden=_int_list("--head", head),
        freeze=_freeze_value(freeze),
        num_frames=frames,
        frame_size=(size, size),
    )
    torch.manual_seed(seed)
    model = CRNN(config)
    metadata: dict[str, object] = {"created_by": "vadx new-model", "seed": seed}
    if weights is not None:
        origin = load_backbone_weights(model.backbone, weights, sha256=sha256, progress=True)
        metadata["backbone_weights"] = origin
    path = save_model(model, out, metadata=metadata)
    counts = model.parameter_counts()["all"]
    console.print(f"saved {path} ({counts['total']:,} parameters). Describe it: vadx info {path}")


@app.command()
def backbones() -> None:
    """List the registered per-frame CNNs."""
    from vadx.models import available_backbones, build_backbone

    table = Table()
    table.add_column("name", no_wrap=True)
    for heading in ("features", "parameters", "CAM layer", "built-in weights"):
        table.add_column(heading)
    for name in available_backbones():
        net = build_backbone(name)
        try:
            net.builtin_weights()
            builtin = "imagenet"
        except VadxError:
            builtin = "-"
        params = sum(p.numel() for p in net.parameters())
        table.add_row(name, str(net.out_channels), f"{params:,}", net.default_layer, builtin)
    console.print(table)


@app.command()
def synth(
    out: Annotated[Path, typer.Argument(help="Folder to write the dataset to.")],
    clips: Annotated[str, typer.Option(help="Clips per class in train,val,test.")] = "40,10,10",
    frames: Annotated[int, typer.Option(help="Frames per clip.")] = 40,
    size: Annotated[int, typer.Option(help="Frame side in pixels (square frames).")] = 112,
    fps: Annotated[float, typer.Option(help="Frame rate of the videos.")] = 10.0,
    seed: Annotated[int, typer.Option(help="Everything generated is a function of it.")] = 0,
    classes: Annotated[
        str, typer.Option(help="Comma-separated subset of fight,shooting,fire,normal.")
    ] = "fight,shooting,fire,normal",
    background: Annotated[
        Path | None, typer.Option(help="A real video to paste the scenes onto.")
    ] = None,
) -> None:
    """Generate synthetic surveillance clips with pixel-exact anomaly masks."""
    from vadx.data.synth import SynthConfig, generate

    counts = _int_list("--clips", clips)
    if len(counts) != 3:
        raise VadxError(f"--clips takes three counts (train,val,test), got {clips!r}")
    config = SynthConfig(
        clips=counts,  # type: ignore[arg-type]
        num_frames=frames,
        size=(size, size),
        fps=fps,
        seed=seed,
        background=None if background is None else str(background),
        classes=tuple(c.strip() for c in classes.split(",") if c.strip()),
    )
    with _progress("rendering clips") as advance:
        manifest = generate(out, config, progress=advance)
    console.print(f"wrote {sum(counts) * len(config.classes)} clips to {out} ({manifest.name})")


@app.command()
def probe(
    video: Annotated[Path, typer.Argument(help="A video file or a folder of frame images.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
) -> None:
    """Describe a video: frames, frame rate, duration, size, codec, rotation."""
    from dataclasses import asdict

    from vadx.video import probe as probe_video

    info = asdict(probe_video(video))
    if as_json:
        typer.echo(json.dumps(info, indent=2))
        return
    table = Table(show_header=False)
    for key, value in info.items():
        table.add_row(key, f"{value:.3f}" if isinstance(value, float) else str(value))
    console.print(table)


@contextlib.contextmanager
def _progress(description: str):
    """A progress bar on stderr; yields ``advance(done, total)``."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = (description, BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, transient=False) as bar:
        task = bar.add_task(description, total=None)

        def advance(done: int, total: int) -> None:
            bar.update(task, completed=done, total=total)

        yield advance


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the demo's outputs.")] = Path(
        "demo-out"
    ),
    full_size: Annotated[
        bool, typer.Option(help="Also time the full-size reference model on one clip.")
    ] = True,
) -> None:
    """Foundation smoke demo: build, run, save, reload and describe a CRNN.

    The full demo (synthetic data, training, detection, explanation) comes with the training
    work; this one shows the model layer working end to end on this machine.
    """
    from vadx.smoke import run_smoke_demo

    run_smoke_demo(out, console, full_size=full_size)


def _int_list(option: str, text: str) -> tuple[int, ...]:
    try:
        return tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError as err:
        raise VadxError(f"{option} takes comma-separated integers, got {text!r}") from err


def _freeze_value(text: str) -> str | int:
    if text in ("none", "all"):
        return text
    if text.isdigit():
        return int(text)
    raise VadxError(f"--freeze takes none, all or a number of trainable units, got {text!r}")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vadx`` console script."""
    try:
        app(args=argv, prog_name="vadx")
    except VadxError as err:
        err_console.print(Text.assemble(("error: ", "bold red"), str(err)), soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        err_console.print("interrupted")
        sys.exit(130)
