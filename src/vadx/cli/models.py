"""The commands about models: info, new-model, import-keras, export, backbones."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.table import Table

from vadx import limits
from vadx.cli.common import FitOption, ModelPath, console, freeze_value, int_list, number
from vadx.errors import VadxError
from vadx.files import writable_path


def info(
    model: ModelPath,
    as_json: Annotated[bool, typer.Option("--json", help="Print machine-readable JSON.")] = False,
    layers: Annotated[bool, typer.Option("--layers", help="List the hookable layers.")] = False,
) -> None:
    """Describe a saved model: architecture, parameters per part, classes, preprocessing (a
    normality model: its grid, threshold, calibration and footage)."""
    from vadx.files import finite_json
    from vadx.models import load_model
    from vadx.models.summary import describe_model
    from vadx.normality import is_normality

    if is_normality(model):
        _normality_info(model, as_json)
        return
    loaded = load_model(model)
    description = describe_model(loaded)
    if as_json:
        document = asdict(description)
        if description.checkpoint is None:  # a model never saved has no such section
            del document["checkpoint"]
        if layers:
            document["layers"] = loaded.layer_names()
        typer.echo(json.dumps(finite_json(document), indent=2, allow_nan=False))
        return
    from vadx.models.summary import render_description

    render_description(description, console)
    if layers:
        table = Table("layer", "module", title="Hookable backbone layers (aliases first)")
        for alias, canonical in loaded.layer_names().items():
            table.add_row(alias, canonical)
        console.print(table)


def _appearance(description) -> str:
    """``memory (8000 features in 32 lists)``, or ``gaussian``."""
    if not description.memory:
        return description.appearance
    lists = f" in {description.memory_lists} lists" if description.memory_lists else ""
    return f"{description.appearance} ({description.memory} features{lists})"


def _normality_info(model: Path, as_json: bool) -> None:
    from vadx.files import finite_json
    from vadx.normality import describe_normality, load_normality

    description = describe_normality(load_normality(model))
    if as_json:
        typer.echo(json.dumps(finite_json(asdict(description)), indent=2, allow_nan=False))
        return
    c = description.calibration
    table = Table(box=box.SIMPLE, show_header=False, title=f"normality model {model}")
    rows = {
        "model_id": description.model_id,
        "backbone": description.backbone,
        "layer": description.layer,
        "appearance": _appearance(description),
        "frame_size": description.frame_size,
        "fit": description.fit,
        "grid": description.grid,
        "channels": description.channels,
    }
    for key, value in rows.items():
        table.add_row(key, str(value))
    table.add_row("motion", "yes" if description.motion else "no")
    table.add_row("frames analysed", f"1 in {description.frame_step}")
    table.add_row("score scales", ", ".join(f"{s:g}" for s in description.scales))
    table.add_row("threshold", f"{description.threshold:g}")
    table.add_row(
        "calibration",
        f"{c.get('held_back_alarms')} alarm(s) in {c.get('held_back_seconds')} s held back"
        + (
            f", {c['fitted_alarms']} in the {c['fitted_seconds']} s learnt from"
            if "fitted_seconds" in c
            else ""
        )
        + f" (target {c.get('alarms_per_hour')}/hour)",
    )
    for video in description.footage:
        table.add_row("footage", f"{video['path']} (sha256 {video['sha256'][:12]}…)")
    for update in description.updates:
        table.add_row(
            "update",
            f"{update['time']}: {len(update['added'])} video(s) added, {update['reason']}; "
            f"threshold {update['threshold_before']:.4g} → {update['threshold_after']:.4g}",
        )
    console.print(table)


def new_model(
    out: Annotated[Path, typer.Argument(help="Checkpoint directory to write.")],
    backbone: Annotated[str, typer.Option(help="Per-frame CNN (see `vadx backbones`).")] = "vgg19",
    width: Annotated[
        float | None, number("VGG19 channel multiplier (1.0 = reference).", 0.01, 8, kind=float)
    ] = None,
    classes: Annotated[str, typer.Option(help="Comma-separated class names.")] = (
        "fight,shooting,fire,normal"
    ),
    normal: Annotated[
        str, typer.Option(help="The class meaning 'no anomaly' ('' if none).")
    ] = "normal",
    pooling: Annotated[str, typer.Option(help="Per-frame global pooling: avg or max.")] = "avg",
    rnn: Annotated[str, typer.Option(help="gru or lstm.")] = "gru",
    rnn_hidden: Annotated[int, number("Units of the recurrent layer.", *limits.UNITS)] = 1024,
    head: Annotated[str, typer.Option(help="Hidden widths of the MLP head, comma-separated.")] = (
        "1024,512,128"
    ),
    frames: Annotated[int, number("Clip length T.", *limits.CLIP_FRAMES)] = 20,
    size: Annotated[int, number("Frame side in pixels (square frames).", *limits.FRAME_SIDE)] = 112,
    fit: FitOption = "stretch",
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
    seed: Annotated[int, number("Seed of the random initialisation.", *limits.SEED)] = 0,
    force: Annotated[
        bool, typer.Option(help="Replace the checkpoint already at OUT (its weights are lost).")
    ] = False,
) -> None:
    """Create a model (reference settings by default) and save it as a checkpoint."""
    from vadx.borrowed import seeded
    from vadx.models import CRNN, CRNNConfig, load_backbone_weights, save_model
    from vadx.models.checkpoint import is_checkpoint

    writable_path(out, "OUT")
    if is_checkpoint(out) and not force:
        raise VadxError(
            f"{out} already holds a checkpoint: give --force to replace it (its weights are "
            "lost), or choose another path"
        )

    backbone_args = {} if width is None else {"width": width}
    config = CRNNConfig(
        class_names=tuple(c.strip() for c in classes.split(",")),
        normal_class=normal or None,
        backbone=backbone,
        backbone_args=backbone_args,
        pooling=pooling,  # type: ignore[arg-type]
        rnn=rnn,  # type: ignore[arg-type]
        rnn_hidden=rnn_hidden,
        head_hidden=int_list("--head", head),
        freeze=freeze_value(freeze),
        num_frames=frames,
        frame_size=(size, size),
        fit=fit,  # type: ignore[arg-type]
    )
    with seeded(seed):
        model = CRNN(config)
    metadata: dict[str, object] = {"created_by": "vadx new-model", "seed": seed}
    if weights is not None:
        origin = load_backbone_weights(model.backbone, weights, sha256=sha256, progress=True)
        metadata["backbone_weights"] = origin
    path = save_model(model, out, metadata=metadata)
    counts = model.parameter_counts()["all"]
    console.print(f"saved {path} ({counts['total']:,} parameters). Describe it: vadx info {path}")


def import_keras_command(
    keras_model: Annotated[
        Path,
        typer.Argument(
            metavar="MODEL",
            help="A Keras model: .keras archive, legacy .h5, or a weights file with --config.",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Checkpoint directory to write.")],
    classes: Annotated[
        str | None,
        typer.Option(help="Class names in output order, comma-separated (default class_0, …)."),
    ] = None,
    normal: Annotated[
        str, typer.Option(help="The class meaning 'no anomaly' (none if not a class).")
    ] = "normal",
    preprocess: Annotated[
        str,
        typer.Option(
            help="How the model's frames were scaled: caffe (keras.applications VGG "
            "preprocess_input: BGR minus the ImageNet mean), unit ([0, 1]), raw (0–255), tf "
            "([-1, 1]) or torch (ImageNet mean/std)."
        ),
    ] = "caffe",
    config: Annotated[
        Path | None,
        typer.Option(help="The model config (model.to_json()) for a weights-only file."),
    ] = None,
    frames: Annotated[
        int | None,
        number("Clip length, if the model does not fix it (default 20).", *limits.CLIP_FRAMES),
    ] = None,
    fit: FitOption = "stretch",
) -> None:
    """Import a Keras video classifier (TimeDistributed CNN → GRU/LSTM → Dense) as a vadx model:
    same outputs, then detect, explain, watch and serve work on it."""
    from vadx.keras import import_keras
    from vadx.models import save_model

    writable_path(out, "--out")
    names = None if classes is None else tuple(c.strip() for c in classes.split(","))
    imported = import_keras(
        keras_model,
        classes=names,
        normal=normal,
        preprocess=preprocess,
        config_path=config,
        num_frames=frames,
        fit=fit,
    )
    path = save_model(imported.model, out, metadata=imported.metadata)
    model_config = imported.model.config
    counts = imported.model.parameter_counts()["all"]
    size = "×".join(str(side) for side in model_config.frame_size)
    console.print(
        f"imported {keras_model.name} ({counts['total']:,} parameters; {model_config.backbone}, "
        f"{model_config.rnn.upper()} {model_config.rnn_hidden}; {model_config.num_frames} frames "
        f"of {size}; classes {', '.join(model_config.class_names)}; preprocessing "
        f"{preprocess}) into {path}. Describe it: vadx info {path}",
        soft_wrap=True,
    )


def export_command(
    model: ModelPath,
    onnx: Annotated[
        Path,
        typer.Option(
            "--onnx",
            help="The whole model's ONNX file; the per-frame CNN (.frames.onnx), the RNN + head "
            "(.sequence.onnx) and a description (.json) are written beside it.",
        ),
    ],
) -> None:
    """Export a model to ONNX: whole, and split for streaming (CNN per frame, RNN per window)."""
    from vadx.models import load_model
    from vadx.models.export import export_onnx

    writable_path(onnx, "--onnx", folder=False)
    paths = export_onnx(load_model(model), onnx)
    console.print(
        "wrote " + ", ".join(str(path) for path in paths.values()) + " (see docs/keras.md)",
        soft_wrap=True,
    )


def backbones() -> None:
    """List the registered per-frame CNNs."""
    from vadx.models.summary import describe_backbones

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # fits 80 columns
    for heading in ("name", "features", "parameters", "CAM layer", "LayerCAM", "weights"):
        table.add_column(heading, no_wrap=True)
    for backbone in describe_backbones():
        features, params = backbone.features, backbone.parameters
        table.add_row(
            backbone.name,
            "-" if features is None else str(features),
            "-" if params is None else f"{params:,}",
            *(
                value or "-"
                for value in (backbone.cam_layer, backbone.layercam_layer, backbone.weights)
            ),
        )
    console.print(table)
