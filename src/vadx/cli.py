"""The ``vadx`` command.

Every command reports bad input as one ``error: …`` line on stderr and exits with status 2;
nothing prints a traceback from inside a library.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import signal
import sys
import threading
import traceback
import warnings
from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from vadx._version import __version__
from vadx.catalogue import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHOD_NAMES, TEMPORAL_NAMES
from vadx.errors import VadxError

try:  # typer ≥ 0.29 carries its own click
    from typer._click.exceptions import ClickException, NoArgsIsHelpError
except ImportError:  # earlier typer runs on click itself
    from click.exceptions import ClickException, NoArgsIsHelpError
from vadx.files import writable_path, write_json

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

VideoArgument = Annotated[Path, typer.Argument(help="A video file (or a folder of frames).")]
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
StrideOption = Annotated[int | None, typer.Option(help="Frames between window starts.")]
StepOption = Annotated[int | None, typer.Option(help="Frames between a window's frames.")]
FIT = typer.Option(
    help="How frames reach the model's size: pad (letter-box), crop (centre) or stretch "
    "(aspect ignored, as the reference's Keras generator). Saved in the model."
)
FitOption = Annotated[str, FIT]
StartOption = Annotated[int | None, typer.Option(help="First frame of the clip.")]
EndOption = Annotated[int | None, typer.Option(help="Last frame of the clip.")]


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
        "1024,512,128"
    ),
    frames: Annotated[int, typer.Option(help="Clip length T.")] = 20,
    size: Annotated[int, typer.Option(help="Frame side in pixels (square frames).")] = 112,
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
    seed: Annotated[int, typer.Option(help="Seed of the random initialisation.")] = 0,
    force: Annotated[
        bool, typer.Option(help="Replace the checkpoint already at OUT (its weights are lost).")
    ] = False,
) -> None:
    """Create a model (reference settings by default) and save it as a checkpoint."""
    import torch

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
        head_hidden=_int_list("--head", head),
        freeze=_freeze_value(freeze),
        num_frames=frames,
        frame_size=(size, size),
        fit=fit,  # type: ignore[arg-type]
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


@app.command("import-keras")
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
        int | None, typer.Option(help="Clip length, if the model does not fix it (default 20).")
    ] = None,
    fit: FitOption = "stretch",
) -> None:
    """Import a Keras video classifier (TimeDistributed CNN → GRU/LSTM → Dense) as a vadx model:
    same outputs, then detect, explain, watch and serve work on it."""
    from vadx.keras import import_keras
    from vadx.models import save_model

    writable_path(out, "--out")
    names = None if classes is None else tuple(c.strip() for c in classes.split(","))
    imported = import_keras(keras_model, classes=names, normal=normal, preprocess=preprocess,
                            config_path=config, num_frames=frames, fit=fit)  # fmt: skip
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


@app.command("export")
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
    from vadx.export import export_onnx
    from vadx.models import load_model

    writable_path(onnx, "--onnx", folder=False)
    paths = export_onnx(load_model(model), onnx)
    console.print(
        "wrote " + ", ".join(str(path) for path in paths.values()) + " (see docs/keras.md)",
        soft_wrap=True,
    )


@app.command()
def backbones() -> None:
    """List the registered per-frame CNNs."""
    from vadx.models import available_backbones, build_backbone

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, collapse_padding=True)  # fits 80 columns
    for heading in ("name", "features", "parameters", "CAM layer", "LayerCAM", "weights"):
        table.add_column(heading, no_wrap=True)
    for name in available_backbones():
        try:
            net = build_backbone(name)
        except VadxError:  # described layer by layer (conv_stack: imported Keras CNNs)
            table.add_row(name, "-", "-", "-", "-", "-")
            continue
        try:
            net.builtin_weights()
            builtin = "imagenet"
        except VadxError:
            builtin = "-"
        params = sum(p.numel() for p in net.parameters())
        table.add_row(name, str(net.out_channels), f"{params:,}", net.default_layer,
                      net.cam_layer(fine=True), builtin)  # fmt: skip
    console.print(table)


@app.command("train")
def train_command(
    data: Annotated[
        Path,
        typer.Argument(
            help="Dataset: a folder (class folders, optionally "
            "under train/ and val/) or a list file."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Run directory (best/, last/, history).")],
    preset: Annotated[
        str | None, typer.Option(help="cpu (transfer, default), cpu-scratch, or paper (GPU).")
    ] = None,
    val: Annotated[
        Path | None,
        typer.Option(help="Validation data (default: val/ split, else a stratified 20% of train)."),
    ] = None,
    start_from: Annotated[Path | None, typer.Option(help="Fine-tune this checkpoint.")] = None,
    backbone: Annotated[str | None, typer.Option(help="Backbone (see `vadx backbones`).")] = None,
    width: Annotated[float | None, typer.Option(help="VGG19 channel multiplier.")] = None,
    weights: Annotated[
        str | None, typer.Option(help="Backbone weights: file, URL or 'imagenet' (shipped ones).")
    ] = None,
    freeze: Annotated[str | None, typer.Option(help="none, all or N trainable units.")] = None,
    frames: Annotated[int | None, typer.Option(help="Clip length T.")] = None,
    size: Annotated[int | None, typer.Option(help="Frame side in pixels.")] = None,
    pooling: Annotated[str | None, typer.Option(help="Per-frame pooling: avg or max.")] = None,
    fit: Annotated[str | None, FIT] = None,
    epochs: Annotated[int | None, typer.Option(help="Most epochs.")] = None,
    batch_size: Annotated[int | None, typer.Option(help="Clips per step.")] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd or adamw.")] = None,
    lr: Annotated[float | None, typer.Option(help="Learning rate.")] = None,
    schedule: Annotated[str | None, typer.Option(help="constant or cosine.")] = None,
    patience: Annotated[int | None, typer.Option(help="Early-stopping patience (0: off).")] = None,
    augment: Annotated[
        bool | None,
        typer.Option("--augment/--no-augment", help="Brightness/flip/zoom (preset decides)."),
    ] = None,
    cache_features: Annotated[
        bool | None,
        typer.Option(
            "--cache-features/--no-cache-features",
            help="Cache a frozen backbone's per-frame features (preset: cpu does).",
        ),
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Seed of everything random.")] = None,
    workers: Annotated[int | None, typer.Option(help="Decoding processes.")] = None,
    resume: Annotated[
        bool, typer.Option(help="Continue the run in --out, with its settings.")
    ] = False,
    override: Annotated[
        bool,
        typer.Option(
            help="With --resume: change the settings a run may change (--epochs, --patience, "
            "--lr, --batch-size, --workers, DATA, --val)."
        ),
    ] = False,
    skip_bad: Annotated[bool, typer.Option(help="Leave out unreadable videos (counted).")] = (
        False
    ),
) -> None:
    """Train a CRNN on labelled videos; checkpoints each epoch, the best one kept.

    --resume continues the run in --out (from its last epoch, or from the start if it was
    stopped before its first checkpoint) with the run's settings; settings given again must
    match them, or --override changes those that may change (see docs/training.md).
    """
    from vadx.train.session import train_from_path

    if override and not resume:
        raise VadxError("--override changes the settings of a resumed run: give it with --resume")
    _at_least("--workers", workers, 0)
    writable_path(out, "--out")

    model_changes = {
        key: value
        for key, value in {
            "backbone": backbone,
            "backbone_args": None if width is None else {"width": width},
            "freeze": None if freeze is None else _freeze_value(freeze),
            "num_frames": frames,
            "frame_size": None if size is None else (size, size),
            "pooling": pooling,
            "fit": fit,
        }.items()
        if value is not None
    }
    if backbone is not None and width is None:
        model_changes["backbone_args"] = {}
    train_changes = {
        key: value
        for key, value in {
            "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer, "lr": lr,
            "schedule": schedule, "patience": patience, "augment": augment, "seed": seed,
            "workers": workers, "cache_features": cache_features,
        }.items()
        if value is not None
    }  # fmt: skip
    with _training_progress() as progress:
        result = train_from_path(
            data, out, preset, model_changes=model_changes, train_changes=train_changes,
            start_from=start_from,
            backbone_weights=weights, val=val, resume=resume, skip_bad=skip_bad,
            progress=progress, override=override,
        )  # fmt: skip
    best = result.history[result.best_epoch] if result.history else None
    console.print(
        f"best epoch {result.best_epoch + 1}: val accuracy {best.val_accuracy:.1%}, macro-F1 "
        f"{best.val_macro_f1:.3f}"
        if best
        else "no epoch ran"
    )
    console.print(f"best model: {result.best}\nresume with: vadx train {data} --out {out} --resume")


@contextlib.contextmanager
def _training_progress():
    """Bars for epochs and for the steps of the current epoch, with loss and accuracy."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[info]}"))  # fmt: skip
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


@app.command("evaluate")
def evaluate_command(
    model: ModelPath,
    data: Annotated[Path, typer.Argument(help="Labelled clips: a folder or a list file.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the metrics.")],
    split: Annotated[str | None, typer.Option(help="Split folder (default: test).")] = None,
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = 8,
    workers: Annotated[int | None, typer.Option(help="Decoding processes.")] = None,
    annotations: Annotated[
        Path | None,
        typer.Option(
            help="Temporal annotations of long videos under DATA (UCF-Crime style): "
            "report the frame-level ROC-AUC of the anomaly score instead."
        ),
    ] = None,
) -> None:
    """Accuracy, per-class precision/recall/F1, ROC-AUC and the confusion matrix.

    With --annotations: the frame-level ROC-AUC of the anomaly score over long videos.
    """
    from vadx.data.dataset import VideoDataset
    from vadx.evaluate import classification_metrics, frame_level_auc, predict, write_evaluation
    from vadx.models import load_model
    from vadx.train.data import load_samples, split_names

    _at_least("--batch-size", batch_size, 1)
    _at_least("--workers", workers, 0)
    writable_path(out, "--out")
    loaded = load_model(model)
    if annotations is not None:
        with _ranks() as rank, _progress("videos") as advance:
            result = frame_level_auc(loaded, annotations, data, progress=advance)
        if rank != 0:  # under torchrun: rank 0 writes and tells
            return
        write_json(out / "frame_metrics.json", result)
        auc = result["frame_roc_auc"]
        console.print(
            f"frame-level ROC-AUC {'-' if auc is None else f'{auc:.3f}'} over {result['frames']} "
            f"frames ({result['anomalous_frames']} anomalous); wrote {out}/frame_metrics.json"
        )
        return
    if split is None and data.is_dir():
        split = split_names(data).get("test")
    samples, classes = load_samples(data, loaded.class_names, split)
    config = loaded.config
    dataset = VideoDataset.for_model(config, samples, classes)
    with _ranks() as rank, _progress("evaluating") as advance:
        probabilities, labels = predict(loaded, dataset, batch_size, workers, advance)
    if rank != 0:  # under torchrun: rank 0 writes and tells
        return
    metrics = classification_metrics(probabilities, labels, classes, config.normal_class)
    write_evaluation(out, metrics, probabilities, labels, [str(s.source) for s in dataset.samples])
    table = Table("class", "precision", "recall", "F1", "ROC-AUC", "clips")
    for name, row in metrics["per_class"].items():
        auc = "-" if row["roc_auc"] is None else f"{row['roc_auc']:.3f}"
        table.add_row(name, f"{row['precision']:.3f}", f"{row['recall']:.3f}", f"{row['f1']:.3f}",
                      auc, str(row["support"]))  # fmt: skip
    console.print(table)
    console.print(
        f"accuracy {metrics['accuracy']:.1%}, macro-F1 {metrics['macro_f1']:.3f}, weighted-F1 "
        f"{metrics['weighted_f1']:.3f}; wrote {out}/metrics.json, confusion.png, predictions.csv"
    )


SmoothOption = Annotated[int, typer.Option(help="Frames of score smoothing.")]
OnOption = Annotated[float, typer.Option(help="Anomaly score that starts an event.")]
OffOption = Annotated[float, typer.Option(help="Anomaly score that ends it.")]
MinFramesOption = Annotated[int, typer.Option(help="Shortest event, in frames.")]
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


@app.command("calibrate")
def calibrate_command(
    model: ModelPath,
    data: Annotated[
        Path,
        typer.Argument(help="The model's training data: a folder (train/ and val/) or list file."),
    ],
    val: Annotated[
        Path | None,
        typer.Option(help="Validation data (default: val/ split, else the training run's 20%)."),
    ] = None,
    percentile: Annotated[
        float, typer.Option(help="Percentile of validation windows taken as the threshold.")
    ] = 99.5,
    batch_size: Annotated[int, typer.Option(help="Clips per batch.")] = 8,
) -> None:
    """Add domain statistics to a trained model, without retraining: then detect, watch,
    explain and serve say when footage is unlike its training data."""
    from vadx.data import VideoDataset
    from vadx.domain import calibrate, save_domain
    from vadx.models import load_model
    from vadx.train.data import training_samples

    _at_least("--batch-size", batch_size, 1)
    if not 0 < percentile <= 100:
        raise VadxError(f"--percentile must be in (0, 100], got {percentile}")
    loaded = load_model(model)
    writable_path(loaded.checkpoint.path, "MODEL")  # the statistics are saved in it
    saved = loaded.checkpoint.metadata.get("train_config") or {}
    train_samples, val_samples, classes = training_samples(
        data, loaded.class_names, val=val, val_fraction=saved.get("val_fraction", 0.2),
        seed=saved.get("seed", 0),
    )  # fmt: skip
    sets = [VideoDataset.for_model(loaded.config, samples, classes)
            for samples in (train_samples, val_samples)]  # fmt: skip
    with _progress("calibrating") as advance:
        stats = calibrate(loaded, *sets, percentile=percentile,
                          progress=lambda _, d, t: advance(d, t),
                          batch_size=batch_size)  # fmt: skip
    save_domain(model, stats)
    console.print(
        f"domain statistics of {stats.frames} training frames, threshold {stats.threshold:.2f} "
        f"(the {percentile:g}th percentile of {stats.windows} validation windows) saved in "
        f"{loaded.checkpoint.path}; the model id is unchanged ({loaded.checkpoint.model_id})",
        soft_wrap=True,
    )


@app.command("detect")
def detect_command(
    model: ModelPath,
    videos: VideosArgument = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write events, scores, video.")] = ...,  # type: ignore[assignment]
    list_file: ListOption = None,
    force: ForceOption = False,
    stride: StrideOption = None,
    step: StepOption = None,
    smooth: SmoothOption = 5,
    on: OnOption = 0.5,
    off: OffOption = 0.35,
    min_frames: MinFramesOption = 3,
    per_class: PerClassOption = False,
    domain: DomainOption = "flag",
    annotate: Annotated[bool, typer.Option(help="Write annotated.mp4.")] = True,
    runtime: Annotated[
        str,
        typer.Option(
            help="Where the per-frame CNN runs: torch, or onnx (ONNX Runtime on the CPU, "
            "1.1–1.4× faster for VGG19 on 2 cores; needs vadx[onnx])."
        ),
    ] = "torch",
) -> None:
    """Find anomalies over a whole video: events, per-frame scores, an annotated video.

    Several videos, folders of videos or --list make a batch: one folder per video, one index.

    A batch run again skips the videos already done; under torchrun its processes share them.
    """
    from vadx.detect import DetectConfig, check_domain_mode, detect, write_detection
    from vadx.models import load_model

    config = DetectConfig(stride=stride, step=step, smooth=smooth, on=on, off=off,
                          min_frames=min_frames, per_class=per_class,
                          domain=domain)  # type: ignore[arg-type]  # fmt: skip
    writable_path(out, "--out")
    if _is_batch(videos, list_file):
        from vadx.batch import DetectJob

        job = DetectJob(config, annotate=annotate, runtime=runtime)
        _run_batch(model, videos, list_file, out, job, force,
                   check=lambda loaded: check_domain_mode(loaded, domain))  # fmt: skip
        return
    video = videos[0]  # type: ignore[index]
    loaded = load_model(model)
    check_domain_mode(loaded, domain)
    with _progress("detecting") as advance:
        result = detect(loaded, video, config, progress=lambda _, d, t: advance(d, t),
                        runtime=runtime)  # fmt: skip
        write_detection(out, result, video, loaded.checkpoint.model_id, annotate,
                        progress=lambda _, d, t: advance(d, t))  # fmt: skip
    checked = result.domain["checked"]
    table = Table("class", "start", "end", "peak", *(["in domain"] if checked else []),
                  title=f"{len(result.events)} event(s)")  # fmt: skip
    for event in result.events:
        familiar = [] if event.out_of_domain is None else [f"{1 - event.out_of_domain:.0%}"]
        table.add_row(event.class_name, f"{event.start_time:.2f} s (frame {event.start_frame})",
                      f"{event.end_time:.2f} s (frame {event.end_frame})",
                      f"{event.peak_probability:.0%}", *familiar)  # fmt: skip
    console.print(table)
    _say_domain(result.domain, loaded, domain)
    console.print(f"wrote {out}/events.json, scores.csv, scores.png"
                  + (", annotated.mp4" if annotate else ""))  # fmt: skip


def _is_batch(videos: list[Path] | None, list_file: Path | None) -> bool:
    """Whether the inputs make a batch (several videos, a folder of videos, a list, or
    several processes); a single video goes on as before. No video at all is an error."""
    from vadx import distributed
    from vadx.video.decode import is_video_path

    if not videos and list_file is None:
        raise VadxError("give a VIDEO: a file, several, a folder of videos, or --list FILE")
    if list_file is not None or len(videos or []) != 1 or distributed.launched():
        return True
    only = videos[0]  # type: ignore[index]
    return only.is_dir() and not is_video_path(only)


def _run_batch(model_path, videos, list_file, out, job, force, check=None) -> None:
    """Run a batch (:mod:`vadx.batch`) and say what it did; under torchrun, as one rank."""
    from vadx import distributed
    from vadx.batch import gather_videos, run_batch
    from vadx.models import load_model

    found = gather_videos(videos or [], None if list_file is None else str(list_file), out)
    loaded = load_model(model_path)
    if check is not None:
        check(loaded)
    with _ranks() as rank:
        world = distributed.world_size()
        who = f"rank {rank}: " if world > 1 else ""
        bars = world == 1 and err_console.is_terminal
        with _batch_progress(bars, who) as (progress, on_video):
            result = run_batch(loaded, found, out, job, force=force, progress=progress,
                               on_video=on_video)  # fmt: skip
    if rank != 0:
        if result.failed:
            raise typer.Exit(2)  # rank 0 says why
        return
    failed = result.failed
    with_events = sum(1 for r in result.records if r["events"])
    console.print(
        f"{len(result.records)} video(s): {len(result.processed)} processed now"
        f"{f' by {world} processes' if world > 1 else ''}, {len(result.skipped)} already complete "
        f"(skipped), {len(failed)} failed; {result.events} event(s) in {with_events} video(s)",
        soft_wrap=True,
    )
    console.print(f"wrote {out}/index.html, events.csv, events.jsonl, videos.csv", soft_wrap=True)
    if failed:
        names = ", ".join(r["video"] for r in failed[:3]) + (", …" if len(failed) > 3 else "")
        raise VadxError(f"{len(failed)} of {len(result.records)} videos failed ({names}): "
                        f"their errors are in {out}/videos.csv; fix them and run again to "
                        "redo only those")  # fmt: skip


@contextlib.contextmanager
def _ranks():
    """Under torchrun, join the other ranks (gloo: only Python objects travel) and size this
    rank's threads to its part of the cores; yields this process's rank (0 for one process,
    which joins nothing)."""
    from datetime import timedelta

    from vadx import distributed

    distributed.init(backend="gloo", timeout=timedelta(days=30))  # ranks may end hours apart
    try:
        distributed.size_threads()
        yield distributed.rank()
    finally:
        distributed.shutdown()


@contextlib.contextmanager
def _batch_progress(bars: bool, who: str):
    """``(progress, on_video)`` of a batch: two bars (videos, and the stage of the video in
    progress) on a terminal; else one line per video (logs, several processes)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    columns = ("{task.description}", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=err_console, disable=not bars) as bar:
        videos = bar.add_task("videos", total=None)
        stage = bar.add_task("", total=None)

        def progress(name: str, done: int, total: int) -> None:
            bar.update(stage, completed=done, total=total, description=f"  {name}")

        def on_video(record: dict, done: int, total: int) -> None:
            name = record["video"]
            bar.update(videos, completed=done, total=total, description=f"videos ({name})")
            if record["status"] != "ok":
                _say("warning: ", "bold yellow", f"{who}{name} failed: {record['error']}")
            elif not bars:
                events = len(record["events"])
                err_console.print(f"{who}{done}/{total} {name}: {events} event(s)",
                                  soft_wrap=True, markup=False, highlight=False)  # fmt: skip

        yield progress, on_video


@app.command("watch")
def watch_command(
    model: ModelPath,
    source: Annotated[
        str,
        typer.Argument(
            help="A video file, a webcam index (0), or an rtsp://, http(s):// or tcp:// URL."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write events, alerts, metrics.")],
    stride: StrideOption = None,
    step: StepOption = None,
    smooth: SmoothOption = 5,
    on: OnOption = 0.5,
    off: OffOption = 0.35,
    min_frames: MinFramesOption = 3,
    per_class: PerClassOption = False,
    domain: DomainOption = "flag",
    queue: Annotated[
        int,
        typer.Option(
            help="Frames the capture queue holds (a live source drops its oldest beyond)."
        ),
    ] = 64,
    batch: Annotated[int, typer.Option(help="Most frames per CNN batch.")] = 16,
    pace: Annotated[
        bool, typer.Option(help="Read a file at its frame rate, like a camera.")
    ] = False,
    max_retries: Annotated[
        int | None,
        typer.Option(help="Failed reconnections in a row before giving up (default: never)."),
    ] = None,
    explain: Annotated[bool, typer.Option(help="Explain each alert's window.")] = True,
    methods: MethodsOption = "layercam",
    temporal: TemporalOption = "frame_shapley",
    view: ViewOption = "contour",
    explain_mp4: Annotated[bool, typer.Option(help="Also write each alert as MP4.")] = False,
    annotate: Annotated[
        Path | None, typer.Option(help="Write annotated frames to this MP4.")
    ] = None,
    mjpeg: Annotated[
        int | None, typer.Option(help="Serve the live view (MJPEG) and /metrics on this port.")
    ] = None,
    host: Annotated[str, typer.Option(help="Address of the MJPEG server.")] = "127.0.0.1",
    webhook: Annotated[str | None, typer.Option(help="POST each event (JSON) to this URL.")] = None,
    sqlite: Annotated[bool, typer.Option(help="Also keep events in events.sqlite.")] = False,
    metrics_every: Annotated[float, typer.Option(help="Seconds between metrics lines.")] = 5.0,
    max_frames: Annotated[int | None, typer.Option(help="Stop after this many frames.")] = None,
    duration: Annotated[float | None, typer.Option(help="Stop after this many seconds.")] = None,
) -> None:
    """Detect and explain anomalies on a live stream (or a file) as they happen.

    Events go to OUT/events.jsonl the moment they start and end (fsynced);
    each alert's window is explained into OUT/alerts/. Stop with Ctrl-C or
    SIGTERM: open events are closed and everything is flushed.
    """
    import signal
    import threading

    from vadx.detect import DetectConfig, check_domain_mode
    from vadx.models import load_model
    from vadx.watch import WatchConfig, watch

    settings = _explain_settings(methods, temporal, view=view, timeline=False)
    config = WatchConfig(
        detect=DetectConfig(stride=stride, step=step, smooth=smooth, on=on, off=off,
                            min_frames=min_frames, per_class=per_class,
                            domain=domain),  # type: ignore[arg-type]
        queue_size=queue, batch=batch, pace=pace, max_retries=max_retries, explain=explain,
        explain_settings=settings, explain_mp4=explain_mp4, annotate=annotate,
        mjpeg=None if mjpeg is None else (host, mjpeg), webhook=webhook, sqlite=sqlite,
        metrics_every=metrics_every, max_frames=max_frames, duration=duration,
    )  # fmt: skip
    writable_path(out, "--out")
    if annotate is not None:
        writable_path(annotate, "--annotate", folder=False)
    loaded = load_model(model)
    check_domain_mode(loaded, domain)
    if loaded.domain is None:
        _say_domain({"checked": False}, loaded, domain)  # before watching: how to add it
    stop = threading.Event()
    for number in (signal.SIGINT, signal.SIGTERM):
        signal.signal(number, lambda *_: stop.set())

    def say_alert(alert, record) -> None:
        if record["state"] == "started":
            flag = " [yellow](outside the model's domain)[/]" if record["out_of_domain"] else ""
            console.print(f"[bold red]ALERT[/] {record['class']} from frame "
                          f"{record['start_frame']} ({record['started_at']}){flag}")  # fmt: skip
        else:
            console.print(f"ended {record['class']}: frames {record['start_frame']}–"
                          f"{record['end_frame']}, peak {record['peak_probability']:.0%} "
                          f"({record['reason']})")  # fmt: skip

    def say_metrics(m) -> None:
        err_console.print(
            f"capture {m['capture_fps']:.1f} fps · processed {m['processed_fps']:.1f} fps · "
            f"latency p50 {_ms(m['latency_ms']['p50'])} · queue {m['queue_depth']} · "
            f"dropped {m['frames_dropped']}"
            + ("" if not m.get("domain") else
               f" · outside domain {m['domain']['windows_outside']}/{m['windows']} windows")
        )  # fmt: skip

    if mjpeg is not None:
        err_console.print(f"live view: http://{host}:{mjpeg}/")
    summary = watch(loaded, int(source) if source.isdigit() else source, out, config, stop=stop,
                    on_alert=say_alert, on_metrics=say_metrics)  # fmt: skip
    m = summary["metrics"]
    console.print(
        f"{summary['ended']} after {summary['seconds']:.1f} s: "
        f"{m['frames_processed']} frames, {len(summary['events'])} event(s), "
        f"{m['frames_dropped']} dropped; wrote {out}/events.jsonl, summary.json",
        soft_wrap=True,
    )
    if summary["source_error"] is not None:
        raise VadxError(f"the source failed for good: {summary['source_error']}")


@app.command("serve")
def serve_command(
    models: Annotated[list[Path], typer.Argument(help="One or more checkpoint directories.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where uploads and results live.")] = Path(
        "vadx-data"
    ),
    token: Annotated[
        str | None,
        typer.Option(envvar="VADX_TOKEN", help="Require this API token (or set VADX_TOKEN)."),
    ] = None,
    max_upload_mb: Annotated[float, typer.Option(help="Largest upload accepted, MB.")] = 200.0,
    workers: Annotated[int, typer.Option(help="Jobs run at the same time.")] = 1,
) -> None:
    """A web page and HTTP API to upload videos, detect, explain and review anomalies.

    Open http://HOST:PORT/ in a browser; the API is documented at /docs.
    Results persist in --data-dir and survive a restart.
    """
    import uvicorn

    from vadx.serve import Server, create_app, load_models

    if workers < 1 or max_upload_mb <= 0:
        raise VadxError("--workers must be at least 1 and --max-upload-mb positive")
    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        err_console.print("warning: serving beyond this machine without --token: anyone who "
                          "can reach it can upload and read results")  # fmt: skip
    writable_path(data_dir, "--data-dir")
    with _listening_socket(host, port) as listening:
        server = Server(load_models(models), data_dir, token, int(max_upload_mb * 1e6), workers)
        console.print(f"vadx serving {', '.join(server.models)} on http://{host}:{port}/ "
                      f"(API docs: /docs, data: {data_dir})", soft_wrap=True)  # fmt: skip
        config = uvicorn.Config(create_app(server), host=host, port=port, log_level="warning")
        try:
            uvicorn.Server(config).run(sockets=[listening])
        finally:
            server.jobs.close()


def _listening_socket(host: str, port: int):
    """A socket bound to ``host:port`` before anything loads: a port in use is one
    ``error:`` line, not a server that starts and then exits."""
    import socket

    if not 0 <= port <= 65535:
        raise VadxError(f"--port must be between 0 and 65535, got {port}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
    except OSError as err:
        listening.close()
        if err.errno == errno.EADDRINUSE:
            raise VadxError(f"--port {port} on {host} is in use: stop what listens there or "
                            "choose another --port") from err  # fmt: skip
        raise VadxError(f"cannot listen on --host {host} --port {port}: "
                        f"{err.strerror or err}") from err  # fmt: skip
    return listening


def _explain_settings(methods: str, temporal: str, target: str = "predicted", **options):
    """The explanation settings of options given as text: comma-separated method and
    estimator names, a target that is a class name or index; ``options`` as they are."""
    from vadx.clip import ExplainSettings, parse_target

    def names(text: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in text.split(",") if part.strip())

    return ExplainSettings(methods=names(methods), temporal=names(temporal),
                           target=parse_target(target), **options)


METHODS_DEFAULT, TEMPORAL_DEFAULT = ",".join(DEFAULT_METHODS), ",".join(DEFAULT_TEMPORAL)
MethodsOption = Annotated[
    str, typer.Option(help=f"Spatial methods, comma-separated ({', '.join(METHOD_NAMES)}).")
]
TemporalOption = Annotated[
    str,
    typer.Option(
        help=f"Temporal estimators, comma-separated ({', '.join(TEMPORAL_NAMES)}); empty for "
        "none."
    ),
]
TargetOption = Annotated[
    str, typer.Option(help="predicted, anomaly (most likely non-normal class), or a class.")
]
LayerOption = Annotated[
    str | None,
    typer.Option(
        help="Backbone layer of the CAM methods (default: the last conv block; "
        "LayerCAM's: the last stride-8 layer, see vadx backbones)."
    ),
]
WeightingOption = Annotated[str, typer.Option(help="Grad-CAM channel weights: frame or clip.")]
NormalisationOption = Annotated[
    str, typer.Option(help="Display maps scaled per clip (default), per frame, or none.")
]
ViewOption = Annotated[
    str, typer.Option(help="heatmap, contour (the reference's) or contours (25/50/75 %).")
]
ColormapOption = Annotated[str, typer.Option(help="jet, turbo, inferno, magma, viridis, hot.")]
OpacityOption = Annotated[float, typer.Option(help="Heat-map opacity, 0–1.")]


@app.command("explain")
def explain_command(
    model: ModelPath,
    videos: VideosArgument = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the explanation.")] = ...,  # type: ignore[assignment]
    list_file: ListOption = None,
    force: ForceOption = False,
    start: StartOption = None,
    end: EndOption = None,
    window: Annotated[int | None, typer.Option(help="Explain this sliding window only.")] = None,
    windows: Annotated[
        str,
        typer.Option(
            help="one (the --start/--end span, default the whole video), all "
            "(every sliding window) or flagged (the windows detection flags)."
        ),
    ] = "one",
    methods: MethodsOption = METHODS_DEFAULT,
    temporal: TemporalOption = TEMPORAL_DEFAULT,
    target: TargetOption = "predicted",
    layer: LayerOption = None,
    weighting: WeightingOption = "frame",
    normalisation: NormalisationOption = "clip",
    view: ViewOption = "heatmap",
    colormap: ColormapOption = "jet",
    opacity: OpacityOption = 0.5,
    stride: StrideOption = None,
    step: StepOption = None,
    timeline: Annotated[
        bool, typer.Option(help="Detect over the whole video for the report's timeline.")
    ] = True,
    quality: Annotated[
        bool, typer.Option(help="Score the maps (deletion/insertion vs random) in the report.")
    ] = False,
    frames: Annotated[bool, typer.Option("--frames", help="Also write every frame as a PNG, "
                                         "per method (frames/METHOD/NNNNNN.png).")] = False,
    mp4: Annotated[bool, typer.Option("--mp4", help="Also write METHOD.mp4.")] = False,
    gif: Annotated[bool, typer.Option("--gif", help="Also write METHOD.gif.")] = False,
    sheets: Annotated[bool, typer.Option("--sheets", help="Also write contact sheets and the "
                                         "methods/views/strip figures (PNG).")] = False,
    everything: Annotated[bool, typer.Option("--all", help="All of --frames, --mp4, --gif "
                                             "and --sheets.")] = False,
    detection: Annotated[Path | None, typer.Option(
        "--detection", help="The --out folder of an earlier `vadx detect` of this video with "
        "this model: its scores make the report's timeline and --windows, instead of detecting "
        "the whole video again.")] = None,
) -> None:
    """Explain a clip (or windows) of a video into report.html (every method, view and frame,
    drawn in the browser) and the audit record; rendered pictures on request.

    With --windows flagged, several videos, folders of videos or --list make a batch (as detect's).
    """
    from vadx.detect import DetectConfig, read_detection
    from vadx.explain.targets import check_target
    from vadx.explain_video import explain_video
    from vadx.models import load_model

    asked = {"frames": frames, "mp4": mp4, "gif": gif, "sheets": sheets}
    exports = tuple(name for name, wanted in asked.items() if wanted or everything)
    settings = _explain_settings(
        methods, temporal, target, layer=layer, weighting=weighting, normalisation=normalisation,
        view=view, colormap=colormap, opacity=opacity, timeline=timeline, quality=quality,
        exports=exports,
    )
    writable_path(out, "--out")
    if _is_batch(videos, list_file):
        from vadx.batch import ExplainJob

        if windows != "flagged" or window is not None or start is not None or end is not None:
            raise VadxError(
                "a batch explains the windows detection flags in each video: add --windows "
                "flagged (--start/--end/--window choose a clip of one video)"
            )
        if detection is not None:
            raise VadxError("--detection reuses the detection of one video; a batch detects each")
        job = ExplainJob(settings, DetectConfig(stride=stride, step=step))
        _run_batch(model, videos, list_file, out, job, force,
                   check=lambda loaded: check_target(loaded, settings.target))  # fmt: skip
        return
    video = videos[0]  # type: ignore[index]
    loaded = load_model(model)
    check_target(loaded, settings.target)
    choice: str | int = window if window is not None else windows
    earlier = None if detection is None else read_detection(detection, loaded, video)
    with _progress("explaining") as advance:
        summary = explain_video(loaded, video, out, settings, start=start, end=end,
                                windows=choice,
                                detect_config=DetectConfig(stride=stride, step=step),
                                progress=lambda stage, d, t: advance(d, t, stage),
                                detection=earlier)  # fmt: skip
    if not summary["clips"]:
        console.print(f"{summary.get('note', 'nothing explained')}; wrote {out}/summary.json")
        return
    table = Table("frames", "predicted", "target", "domain score", "folder", title="explained")
    for clip in summary["clips"]:
        score = clip["domain"].get("score")
        familiar = "-" if score is None else f"{score:.2f}"
        table.add_row(f"{clip['frames'][0]}–{clip['frames'][-1]}",
                      f"{clip['predicted']} {clip['probability']:.0%}", clip["target"],
                      familiar, Path(clip["folder"]).name)  # fmt: skip
    console.print(table)
    for clip in summary["clips"]:
        console.print(f"report: {clip['report']}", soft_wrap=True)
    _say_clip_domain(summary["clips"], loaded)


def _say_clip_domain(clips: list[dict], model) -> None:
    """Warn, on stderr, about explained clips outside the model's domain (or unchecked)."""
    from vadx.domain import missing_note

    if not all(clip["domain"].get("checked") for clip in clips):
        err_console.print(f"note: {missing_note(model)}", soft_wrap=True)
        return
    outside = [clip for clip in clips if clip["domain"]["verdict"] == "outside"]
    if outside:
        err_console.print(
            f"[bold yellow]warning:[/] {len(outside)} of {len(clips)} explained clip(s) are "
            "outside the model's training domain (domain score > 1): their predictions and maps "
            "are not reliable",
            soft_wrap=True,
        )


@app.command("compare")
def compare_command(
    models_and_video: Annotated[
        list[Path], typer.Argument(help="Two or more checkpoint directories, then the video.")
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the comparison.")],
    start: StartOption = None,
    end: EndOption = None,
    method: Annotated[str, typer.Option(help="The spatial method shown.")] = "layercam",
    temporal: TemporalOption = "frame_shapley",
    target: TargetOption = "predicted",
    layer: LayerOption = None,
    view: ViewOption = "heatmap",
    colormap: ColormapOption = "jet",
    opacity: OpacityOption = 0.5,
) -> None:
    """The same clip explained by several models side by side, with their predictions."""
    from vadx.explain.targets import check_target
    from vadx.explain_video import compare_models
    from vadx.models import load_model
    from vadx.video import probe as probe_video

    if len(models_and_video) < 3:
        raise VadxError("compare takes at least two models and a video: MODEL_A MODEL_B VIDEO")
    *paths, video = models_and_video
    names = [path.name if path.name not in ("best", "last") else f"{path.parent.name}/{path.name}"
             for path in paths]  # fmt: skip
    names = [name if names.count(name) == 1 else f"{name} #{k + 1}"
             for k, name in enumerate(names)]  # fmt: skip
    settings = _explain_settings(method, temporal, target, layer=layer, view=view,
                                 colormap=colormap, opacity=opacity, timeline=False)
    writable_path(out, "--out")
    probe_video(video)  # a missing or unreadable video before the models load
    loaded = {n: load_model(p) for n, p in zip(names, paths, strict=True)}
    for model in loaded.values():
        check_target(model, settings.target)
    summary = compare_models(loaded, video, out, settings, start, end)
    table = Table("model", "predicted", "target", title=f"{summary['method']} on {video}")
    for entry in summary["models"]:
        table.add_row(entry["model"], f"{entry['predicted']} {entry['probability']:.0%}",
                      entry["target"])  # fmt: skip
    console.print(table)
    console.print(f"wrote {out}/compare.png, compare.json")


@app.command("xai-eval")
def xai_eval_command(
    model: ModelPath,
    data: Annotated[Path, typer.Argument(help="A dataset with ground-truth masks (vadx synth).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the table and plot.")],
    split: Annotated[str, typer.Option(help="Which split to score.")] = "test",
    methods: MethodsOption = METHODS_DEFAULT,
    temporal: TemporalOption = TEMPORAL_DEFAULT,
    layer: LayerOption = None,
    limit: Annotated[int | None, typer.Option(help="Score at most this many clips.")] = None,
    faithfulness_clips: Annotated[
        int, typer.Option(help="Clips that also get deletion/insertion curves (costly).")
    ] = 8,
    sanity_clips: Annotated[
        int, typer.Option(help="Clips that also get the randomisation checks (costly).")
    ] = 2,
    steps: Annotated[int, typer.Option(help="Steps of the deletion/insertion curves.")] = 10,
) -> None:
    """Score explanation methods on a dataset: faithfulness, localisation, sanity checks."""
    from vadx.models import load_model
    from vadx.quality import xai_eval

    settings = _explain_settings(methods, temporal, layer=layer)  # the names, checked
    for option, value, minimum in (("--limit", limit, 1), ("--steps", steps, 1),
                                   ("--faithfulness-clips", faithfulness_clips, 0),
                                   ("--sanity-clips", sanity_clips, 0)):  # fmt: skip
        _at_least(option, value, minimum)
    writable_path(out, "--out")
    loaded = load_model(model)
    with _ranks() as rank, _progress("scoring") as advance:
        document = xai_eval(
            loaded, data, out, split=split, methods=settings.methods, temporal=settings.temporal,
            layer=layer, limit=limit, faithfulness_clips=faithfulness_clips,
            sanity_clips=sanity_clips, steps=steps, progress=lambda _, d, t: advance(d, t),
        )
    if rank != 0:  # under torchrun: rank 0 writes and tells
        return
    console.print((out / "xai-eval.md").read_text(encoding="utf-8"), markup=False)
    console.print(f"{document['clips_scored']} clips scored; wrote {out}/xai-eval.json, "
                  "xai-eval.md, xai-eval.png")  # fmt: skip


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
    writable_path(out, "OUT")
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


@app.command()
def demo(
    out: Annotated[Path, typer.Option(help="Where to write the demo's outputs.")] = Path(
        "demo-out"
    ),
    epochs: Annotated[int | None, typer.Option(help="Training epochs (default: 25).")] = None,
    clips: Annotated[
        str | None,
        typer.Option(help="Clips per class in train,val,test (default: 96,24,32)."),
    ] = None,
) -> None:
    """The whole system on built-in defaults: synthesise, train, evaluate, detect, explain.

    Runs offline on a CPU in about 10 minutes; run it again to continue where it stopped.
    """
    from vadx.demo import DemoSettings, run_demo

    writable_path(out, "--out")
    _at_least("--epochs", epochs, 1)
    settings = DemoSettings()
    if epochs is not None:
        settings = replace(settings, epochs=epochs)
    if clips is not None:
        counts = _int_list("--clips", clips)
        if len(counts) != 3 or min(counts) < 1:
            raise VadxError(f"--clips takes three counts of at least 1 (train,val,test), got "
                            f"{clips!r}")  # fmt: skip
        settings = replace(settings, clips=counts)  # type: ignore[arg-type]
    with _training_progress() as progress:
        summary = run_demo(out, settings, say=lambda text: err_console.print(text),
                           progress=progress)  # fmt: skip
    console.rule("vadx demo")
    console.print(
        f"test accuracy {summary['test_accuracy']:.1%} (macro-F1 {summary['test_macro_f1']:.3f}) "
        f"after {summary['epochs_run']} epochs"
    )
    for match in summary["matches"]:
        if match["found"]:
            console.print(
                f"  {match['class']:<9} frames {match['start']}–{match['end']}: found at "
                f"{match['detected_start']}–{match['detected_end']}"
                + ("" if match["within_tolerance"] else " (boundaries off by more than a window)")
            )
        else:
            console.print(f"  {match['class']:<9} frames {match['start']}–{match['end']}: missed")
    extra = len(summary["detected_events"]) - summary["events_found"]
    console.print(f"  {max(extra, 0)} other detected event(s)")
    for name, path in summary["paths"].items():
        console.print(f"{name:>11}: {path}")
    for report in summary["reports"]:
        console.print(f"     report: {report}", soft_wrap=True)
    console.print(f"    summary: {out / 'summary.json'}")
    real = summary["domain"].get("real_video")
    said = (f" On real street footage ({Path(real['path']).name}) the domain check flags "
            f"{real['share_outside']:.0%} of the windows as outside its domain."
            if real and real.get("checked") else "")  # fmt: skip
    console.print(
        f"[bold]This demo model knows synthetic scenes only.[/]{said} To detect anomalies in real "
        "video, train on your own footage: docs/domain.md.",
        soft_wrap=True,
    )


def _say_domain(summary: dict, model, mode: str) -> None:
    """Tell the operator, on stderr, when footage is outside the model's domain (or unchecked)."""
    from vadx.domain import missing_note, verdict_line

    if mode == "off":
        return
    if not summary.get("checked"):
        err_console.print(f"note: {missing_note(model)}", soft_wrap=True)
        return
    line = verdict_line(summary)
    if line is not None:
        done = "their alerts were suppressed" if mode == "suppress" else "events there are flagged"
        err_console.print(f"[bold yellow]warning:[/] {line}; {done}", soft_wrap=True)


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _at_least(option: str, value: int | None, minimum: int) -> None:
    if value is not None and value < minimum:
        raise VadxError(f"{option} must be at least {minimum}, got {value}")


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


class Stopped(BaseException):
    """SIGINT or SIGTERM arrived: the command unwinds (removing what it had half-written)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


@contextlib.contextmanager
def _signals_stop_the_command():
    """SIGINT and SIGTERM raise :class:`Stopped` in the command, so that every ``finally``
    and staging folder cleans up (Python's default SIGTERM ends the process on the spot)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum, _frame) -> None:
        raise Stopped(signum)

    previous = {number: signal.signal(number, stop) for number in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)


@contextlib.contextmanager
def _warnings_as_lines():
    """Warnings as ``warning: …`` lines on stderr, not as ``file:line: UserWarning: …``."""

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        _say("warning: ", "bold yellow", str(message))

    with warnings.catch_warnings():
        warnings.showwarning = show
        yield


def _say(prefix: str, style: str, text: str) -> None:
    err_console.print(Text.assemble((prefix, style), text), soft_wrap=True)


#: what to do about an OS error, by errno
_OS_ADVICE = {
    errno.EACCES: "check its permissions or choose another path",
    errno.EPERM: "check its permissions or choose another path",
    errno.EROFS: "the file system is read-only: choose another path",
    errno.ENOSPC: "the disk is full: free some space or choose another path",
    errno.ENOTDIR: "a part of the path is a file, not a folder: choose another path",
    errno.EISDIR: "it is a folder: give a file",
    errno.ENOENT: "check the path",
    errno.EEXIST: "it exists already: choose another path",
}


def os_error_line(err: OSError) -> str:
    """One line for an OS error: the path, what went wrong, what to do."""
    paths = " → ".join(str(p) for p in (err.filename, err.filename2) if p is not None)
    reason = err.strerror or str(err) or type(err).__name__
    advice = _OS_ADVICE.get(err.errno) if paths else None
    return (f"{paths}: " if paths else "") + reason + (f"; {advice}" if advice else "")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``vadx`` console script, and the one place failures become exit
    statuses: a failure vadx expects (its own errors, an OS error on a file) is one
    ``error:`` line and status 2; SIGINT/SIGTERM stop the command, its unfinished outputs
    removed, with status 128 + the signal; anything else is a bug: its traceback, a line
    asking to report it, status 1."""
    with _signals_stop_the_command(), _warnings_as_lines():
        try:
            status = app(args=argv, prog_name="vadx", standalone_mode=False)
        except NoArgsIsHelpError as err:  # `vadx` alone: the help
            err.show()
            sys.exit(err.exit_code)
        except ClickException as err:  # a bad option or argument, as the parser sees it
            where = err.ctx.command_path if getattr(err, "ctx", None) else "vadx"
            _say("error: ", "bold red", f"{err.format_message()} (see {where} --help)")
            sys.exit(2)
        except VadxError as err:
            _say("error: ", "bold red", str(err))
            sys.exit(2)
        except OSError as err:
            _say("error: ", "bold red", os_error_line(err))
            sys.exit(2)
        except Stopped as stop:
            name = signal.Signals(stop.signum).name
            err_console.print(f"stopped by {name}; unfinished outputs were removed")
            sys.exit(128 + stop.signum)
        except Exception:
            traceback.print_exc()
            _say("error: ", "bold red", f"unexpected failure in vadx {__version__}, a bug: "
                 "please report it with the traceback above")  # fmt: skip
            sys.exit(1)
        if isinstance(status, int) and status:  # --help and the like: click's own status
            sys.exit(status)
