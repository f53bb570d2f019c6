"""The commands that make and measure a model: train, evaluate, calibrate, choose-layer,
calibrate-trust."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from vadx import limits
from vadx.catalogue import DEFAULT_METHODS, METHOD_NAMES
from vadx.cli.common import (
    FIT,
    ModelPath,
    console,
    freeze_value,
    number,
    progress_bar,
    ranks,
    training_progress,
)
from vadx.errors import VadxError
from vadx.files import writable_path


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
    width: Annotated[float | None, number("VGG19 channel multiplier.", 0.01, 8, kind=float)] = None,
    weights: Annotated[
        str | None, typer.Option(help="Backbone weights: file, URL or 'imagenet' (shipped ones).")
    ] = None,
    freeze: Annotated[str | None, typer.Option(help="none, all or N trainable units.")] = None,
    frames: Annotated[int | None, number("Clip length T.", *limits.CLIP_FRAMES)] = None,
    size: Annotated[int | None, number("Frame side in pixels.", *limits.FRAME_SIDE)] = None,
    pooling: Annotated[str | None, typer.Option(help="Per-frame pooling: avg or max.")] = None,
    fit: Annotated[str | None, FIT] = None,
    epochs: Annotated[int | None, number("Most epochs.", 1, 100_000)] = None,
    batch_size: Annotated[int | None, number("Clips per step.", *limits.BATCH)] = None,
    optimizer: Annotated[str | None, typer.Option(help="sgd or adamw.")] = None,
    lr: Annotated[float | None, number("Learning rate.", 1e-12, 1000, kind=float)] = None,
    schedule: Annotated[str | None, typer.Option(help="constant or cosine.")] = None,
    patience: Annotated[int | None, number("Early-stopping patience (0: off).", 0, 100_000)] = None,
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
    explanation_loss: Annotated[
        str | None,
        typer.Option(
            help="Penalise attribution outside the clips' masks: cam=W (LayerCAM at the last "
            "feature map) and/or input_gradient=W (Ross et al.; not with the feature cache).",
        ),
    ] = None,
    seed: Annotated[int | None, number("Seed of everything random.", *limits.SEED)] = None,
    workers: Annotated[int | None, number("Decoding processes.", *limits.WORKERS)] = None,
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
    from vadx.train.config import ExplanationLoss
    from vadx.train.session import train_from_path

    if override and not resume:
        raise VadxError("--override changes the settings of a resumed run: give it with --resume")
    writable_path(out, "--out")

    model_changes = {
        key: value
        for key, value in {
            "backbone": backbone,
            "backbone_args": None if width is None else {"width": width},
            "freeze": None if freeze is None else freeze_value(freeze),
            "num_frames": frames,
            "frame_size": None if size is None else (size, size),
            "pooling": pooling,
            "fit": fit,
        }.items()
        if value is not None
    }
    train_changes = {
        key: value
        for key, value in {
            "epochs": epochs,
            "batch_size": batch_size,
            "optimizer": optimizer,
            "lr": lr,
            "schedule": schedule,
            "patience": patience,
            "augment": augment,
            "seed": seed,
            "workers": workers,
            "cache_features": cache_features,
            "explanation_loss": None
            if explanation_loss is None
            else ExplanationLoss.parse(explanation_loss).to_dict(),
        }.items()
        if value is not None
    }
    with training_progress() as progress:
        result = train_from_path(
            data,
            out,
            preset,
            model_changes=model_changes,
            train_changes=train_changes,
            start_from=start_from,
            backbone_weights=weights,
            val=val,
            resume=resume,
            skip_bad=skip_bad,
            progress=progress,
            override=override,
        )
    best = result.history[result.best_epoch] if result.history else None
    console.print(
        f"best epoch {result.best_epoch + 1}: val accuracy {best.val_accuracy:.1%}, macro-F1 "
        f"{best.val_macro_f1:.3f}"
        if best
        else "no epoch ran"
    )
    console.print(f"best model: {result.best}\nresume with: vadx train {data} --out {out} --resume")


def evaluate_command(
    model: ModelPath,
    data: Annotated[Path, typer.Argument(help="Labelled clips: a folder or a list file.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the metrics.")],
    split: Annotated[str | None, typer.Option(help="Split folder (default: test).")] = None,
    batch_size: Annotated[int, number("Clips per batch.", *limits.BATCH)] = 8,
    workers: Annotated[int | None, number("Decoding processes.", *limits.WORKERS)] = None,
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
    from vadx.models import load_model
    from vadx.train.evaluate import evaluate_clips, evaluate_frames

    writable_path(out, "--out")
    loaded = load_model(model)
    if annotations is not None:
        with ranks() as rank, progress_bar("videos") as advance:
            result = evaluate_frames(loaded, annotations, data, out, progress=advance)
        if rank != 0:  # under torchrun: rank 0 writes and tells
            return
        auc = result.frame_roc_auc
        console.print(
            f"frame-level ROC-AUC {'-' if auc is None else f'{auc:.3f}'} over {result.frames} "
            f"frames ({result.anomalous_frames} anomalous); wrote {out}/frame_metrics.json"
        )
        return
    with ranks() as rank, progress_bar("evaluating") as advance:
        metrics = evaluate_clips(
            loaded, data, out, split, batch_size=batch_size, workers=workers, progress=advance
        )
    if rank != 0:  # under torchrun: rank 0 writes and tells
        return
    table = Table("class", "precision", "recall", "F1", "ROC-AUC", "clips")
    for name, row in metrics.per_class.items():
        auc = "-" if row.roc_auc is None else f"{row.roc_auc:.3f}"
        table.add_row(
            name,
            f"{row.precision:.3f}",
            f"{row.recall:.3f}",
            f"{row.f1:.3f}",
            auc,
            str(row.support),
        )
    console.print(table)
    console.print(
        f"accuracy {metrics.accuracy:.1%}, macro-F1 {metrics.macro_f1:.3f}, weighted-F1 "
        f"{metrics.weighted_f1:.3f}; wrote {out}/metrics.json, confusion.png, predictions.csv"
    )


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
        float,
        number("Percentile of validation windows taken as the threshold.", 0.1, 100, kind=float),
    ] = 99.5,
    batch_size: Annotated[int, number("Clips per batch.", *limits.BATCH)] = 8,
) -> None:
    """Add domain statistics to a trained model, without retraining: then detect, watch,
    explain and serve say when footage is unlike its training data."""
    from vadx.detect.domain import calibrate, save_domain
    from vadx.models import load_model
    from vadx.train.session import training_sets

    loaded = load_model(model)
    writable_path(loaded.checkpoint.path, "MODEL")  # the statistics are saved in it
    sets = training_sets(loaded, data, val)
    with progress_bar("calibrating") as advance:
        stats = calibrate(
            loaded,
            *sets,
            percentile=percentile,
            progress=lambda _, d, t: advance(d, t),
            batch_size=batch_size,
        )
    save_domain(model, stats)
    console.print(
        f"domain statistics of {stats.frames} training frames, threshold {stats.threshold:.2f} "
        f"(the {percentile:g}th percentile of {stats.windows} validation windows) saved in "
        f"{loaded.checkpoint.path}; the model id is unchanged ({loaded.checkpoint.model_id})",
        soft_wrap=True,
    )


def choose_layer_command(
    model: ModelPath,
    data: Annotated[
        Path,
        typer.Argument(help="The model's data: a folder (train/ and val/) or list file."),
    ],
    method: Annotated[
        str, typer.Option(help="CAM methods to choose a layer for, comma-separated.")
    ] = "gradcam",
    val: Annotated[
        Path | None,
        typer.Option(help="Held-out data (default: val/ split, else the training run's 20%)."),
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Candidate layers, comma-separated (default: each stage's last at "
            "stride 8 or coarser)."
        ),
    ] = None,
    clips: Annotated[int, number("Held-out anomalous clips to measure on.", 1, 10_000)] = 8,
    steps: Annotated[int, number("Steps of each deletion curve.", 2, 1000)] = 10,
) -> None:
    """Choose the layer each CAM method reads by faithfulness on held-out clips (the lowest
    deletion area) and record it in the model: later explanations use it by default."""
    from vadx.models import load_model
    from vadx.quality.layers import choose_layer, held_out_clips, layer_methods, save_layers
    from vadx.train.session import training_sets

    methods = [m.strip() for m in method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in layer_methods()]
    if not methods or unknown:
        raise VadxError(
            f"--method {method!r}: a layer can be chosen for {', '.join(layer_methods())}"
        )
    candidates = [n.strip() for n in layers.split(",") if n.strip()] if layers else None
    loaded = load_model(model)
    writable_path(loaded.checkpoint.path, "MODEL")  # the choice is saved in it
    _, held_out = training_sets(loaded, data, val)
    picked = held_out_clips(held_out, loaded, clips)
    choices = []
    for name in methods:
        with progress_bar(f"choosing {name}'s layer") as advance:
            choices.append(
                choose_layer(
                    loaded,
                    picked,
                    name,
                    candidates,
                    steps,
                    progress=lambda _, d, t: advance(d, t),
                )
            )
    table = Table("method", "layer", "deletion area by layer (lower: more faithful)")
    for choice in choices:
        areas = ", ".join(f"{k} {v:.3f}" for k, v in choice.deletion_auc.items())
        table.add_row(choice.method, choice.layer, areas)
    console.print(table)
    save_layers(model, choices)
    console.print(
        f"chosen on {len(picked)} held-out clips and saved in {loaded.checkpoint.path}; "
        f"the model id is unchanged ({loaded.checkpoint.model_id})",
        soft_wrap=True,
    )


def calibrate_trust_command(
    model: ModelPath,
    data: Annotated[
        Path,
        typer.Argument(help="The model's vadx synth data: a folder (train/ and val/)."),
    ],
    val: Annotated[
        Path | None,
        typer.Option(
            help="Held-out vadx synth data (default: val/ split, else the training run's 20%)."
        ),
    ] = None,
    clips: Annotated[
        int | None, number("Held-out anomalous clips to measure on (default: all).", 1, 10_000)
    ] = None,
    method: Annotated[
        str, typer.Option(help="Map methods to calibrate, comma-separated.")
    ] = ",".join(DEFAULT_METHODS),
) -> None:
    """Measure how often each method's maps match the ground truth on held-out synthetic
    scenes, and record it in the model: later trust checks (--trust) use it for their
    verdicts."""
    from vadx.models import load_model
    from vadx.quality.trust_calibration import calibrate_trust, validation_scenes
    from vadx.quality.trust_prior import save_trust_calibration
    from vadx.train.session import held_out_samples

    methods = [m.strip() for m in method.split(",") if m.strip()]
    unknown = [m for m in methods if m not in METHOD_NAMES]
    if not methods or unknown:
        raise VadxError(f"--method {method!r}: the map methods are {', '.join(METHOD_NAMES)}")
    loaded = load_model(model)
    writable_path(loaded.checkpoint.path, "MODEL")  # the calibration is saved in it
    held_out = held_out_samples(loaded, data, val)
    scenes = validation_scenes(loaded, held_out, val or data, clips)
    with progress_bar("measuring the ground truth") as advance:
        calibration = calibrate_trust(
            loaded, scenes, methods, progress=lambda _, d, t: advance(d, t)
        )
    table = Table("method", "maps", "matching the ground truth")
    for name, rate in calibration.methods.items():
        table.add_row(name, str(rate.maps), f"{rate.matching} ({rate.rate:.0%})")
    console.print(table)
    auc = calibration.cross_validated_auc
    save_trust_calibration(model, calibration)
    console.print(
        f"measured on {calibration.clips} held-out scenes (cross-validated ROC-AUC of the "
        f"verdict's estimate: {'-' if auc is None else f'{auc:.3f}'}) and saved in "
        f"{loaded.checkpoint.path}; the model id is unchanged ({loaded.checkpoint.model_id})",
        soft_wrap=True,
    )
