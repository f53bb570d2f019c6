"""A model described for people (``vadx info``) and for programs (``vadx info --json``); the
registered backbones described (``vadx backbones``)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.console import Console
from rich.table import Table

from vadx.errors import VadxError
from vadx.models import CRNN, available_backbones, build_backbone


@dataclass(frozen=True, slots=True)
class CheckpointDescription:
    """Where a model was saved from: its folder, id and weights' checksum, when and by which
    vadx and torch, its metadata, its domain statistics' and explanation layers' sections."""

    path: str
    model_id: str
    weights_sha256: str
    created: str
    vadx_version: str
    torch_version: str
    metadata: dict[str, Any]
    domain: dict[str, Any] | None
    explanation_layers: dict[str, str]
    #: the trust calibration's match rates, over all classes (``vadx calibrate-trust``)
    trust_calibration: dict[str, dict[str, int]] | None = None


@dataclass(frozen=True, slots=True)
class ModelDescription:
    """A model described (``vadx info --json``: ``dataclasses.asdict``, without
    ``checkpoint`` for a model never saved): its configuration (``config.json``'s ``model``),
    features per frame, CAM layers, parameter counts per part, and its checkpoint."""

    model: dict[str, Any]
    feature_size: int
    default_layer: str
    fine_layer: str
    parameters: dict[str, dict[str, int]]
    checkpoint: CheckpointDescription | None = None


@dataclass(frozen=True, slots=True)
class BackboneDescription:
    """A registered per-frame CNN (``vadx backbones``): features per frame, parameters, the
    CAM methods' default layer and LayerCAM's finer one, and ``imagenet`` where it ships
    pretrained weights; all but the name None for a backbone that cannot be built bare."""

    name: str
    features: int | None = None
    parameters: int | None = None
    cam_layer: str | None = None
    layercam_layer: str | None = None
    weights: str | None = None


def describe_model(model: CRNN) -> ModelDescription:
    """Architecture, parameter counts per part, classes, preprocessing and provenance."""
    info = model.checkpoint
    checkpoint = None
    if info is not None:
        checkpoint = CheckpointDescription(
            path=str(info.path),
            model_id=info.model_id,
            weights_sha256=info.weights_sha256,
            created=info.created,
            vadx_version=info.vadx_version,
            torch_version=info.torch_version,
            metadata=info.metadata,
            domain=info.domain,
            explanation_layers=dict(model.explanation_layers),
            trust_calibration=(info.trust_calibration or {}).get("methods"),
        )
    return ModelDescription(
        model=model.config.to_dict(),
        feature_size=model.feature_size,
        default_layer=model.default_layer,
        fine_layer=model.fine_layer,
        parameters=model.parameter_counts(),
        checkpoint=checkpoint,
    )


def describe_backbones() -> list[BackboneDescription]:
    """Every registered per-frame CNN, by name: features per frame, parameters, the CAM
    methods' default layer and LayerCAM's finer one, and ``imagenet`` where it ships
    pretrained weights (else None). A backbone described layer by layer (``conv_stack``: an
    imported Keras CNN) cannot be built bare: its entries but the name are None."""
    described = []
    for name in available_backbones():
        try:
            net = build_backbone(name)
        except VadxError:
            described.append(BackboneDescription(name))
            continue
        described.append(
            BackboneDescription(
                name=name,
                features=net.out_channels,
                parameters=sum(p.numel() for p in net.parameters()),
                cam_layer=net.default_layer,
                layercam_layer=net.cam_layer(fine=True),
                weights="imagenet" if _ships_weights(net) else None,
            )
        )
    return described


def _ships_weights(backbone: Any) -> bool:
    try:
        backbone.builtin_weights()
    except VadxError:
        return False
    return True


def render_description(description: ModelDescription, console: Console) -> None:
    """Print :func:`describe_model`'s output as tables."""
    model = description.model
    arch, classes, prep = model["architecture"], model["classes"], model["preprocessing"]
    pooling = "flatten" if arch["pooling"] == "flatten" else f"global {arch['pooling']}"
    bidirectional = ", bidirectional" if arch.get("rnn_bidirectional") else ""
    rows = [
        ("backbone", f"{_backbone(arch)}, per frame (TimeDistributed), freeze={arch['freeze']}"),
        ("pooling", f"{pooling} → {description.feature_size} features / frame"),
        ("rnn", f"{arch['rnn'].upper()} {arch['rnn_layers']}×{arch['rnn_hidden']}{bidirectional}"),
        ("head", _head(arch, len(classes["names"]))),
        ("classes", ", ".join(classes["names"]) + f"  (normal: {classes['normal']})"),
        (
            "clip",
            f"{prep['num_frames']} frames of {prep['frame_size'][0]}×{prep['frame_size'][1]} RGB, "
            f"fit: {prep['fit']}",
        ),
        ("normalisation", f"mean {prep['mean']}, std {prep['std']} on values in [0, 1]"),
        ("default CAM layer", description.default_layer),
        ("LayerCAM layer (stride 8)", description.fine_layer),
    ]
    checkpoint = description.checkpoint
    if checkpoint:
        rows += [
            ("checkpoint", checkpoint.path),
            ("model id", checkpoint.model_id),
            (
                "saved",
                f"{checkpoint.created} by vadx {checkpoint.vadx_version}, "
                f"torch {checkpoint.torch_version}",
            ),
            ("domain check", _domain_row(checkpoint.domain, checkpoint.path)),
            ("explanation layers", _layers_row(checkpoint.explanation_layers)),
            ("trust calibration", _trust_row(checkpoint.trust_calibration, checkpoint.path)),
        ]
        origin = checkpoint.metadata.get("imported_from")
        if origin:
            source = f"{origin['framework']} {origin['file']} ({origin['output']} output)"
            rows.append(("imported from", f"{source}; frames: {origin['preprocess_description']}"))
    table = Table(show_header=False, title="Model", title_justify="left")
    for key, value in rows:
        table.add_row(key, value)
    console.print(table)
    params = Table("part", "parameters", "trainable", title="Parameters", title_justify="left")
    for part, counts in description.parameters.items():
        params.add_row(part, f"{counts['total']:,}", f"{counts['trainable']:,}")
    console.print(params)


def _backbone(arch: dict[str, Any]) -> str:
    args = dict(arch["backbone_args"])
    layers = args.pop("layers", None)
    text = arch["backbone"]
    if layers is not None:  # a conv_stack: its layers by name, not its whole description
        convs = [layer.get("name", "conv") for layer in layers if layer["type"] == "conv"]
        text += f" of {len(layers)} layers ({len(convs)} conv: {', '.join(convs)})"
    extra = ", ".join(f"{k}={v}" for k, v in args.items())
    return text + (f" ({extra})" if extra else "")


def _head(arch: dict[str, Any], num_classes: int) -> str:
    if not arch.get("head_layers"):
        widths = " → ".join(str(w) for w in [arch["rnn_hidden"], *arch["head_hidden"]])
        return f"MLP {widths} → {num_classes}, dropout {arch['dropout']}"
    parts = []
    for layer in arch["head_layers"]:
        detail = {
            "dense": f"{layer.get('units')} {layer.get('activation', 'linear')}",
            "dropout": str(layer.get("rate")),
            "batchnorm": "",
            "activation": str(layer.get("activation")),
        }[layer["type"]]
        parts.append(f"{layer['type']} {detail}".strip())
    return " → ".join(parts)


def _layers_row(chosen: dict[str, str] | None) -> str:
    if not chosen:
        return "the backbone's defaults (vadx choose-layer picks them by faithfulness)"
    return ", ".join(f"{method} at {layer}" for method, layer in chosen.items()) + " (chosen)"


def _trust_row(methods: dict[str, dict[str, int]] | None, path: str) -> str:
    if not methods:
        return f"none: measure it with `vadx calibrate-trust {path} SYNTH_DATA`"
    rates = ", ".join(f"{m} {r['matching']}/{r['maps']}" for m, r in methods.items())
    return f"maps that matched the ground truth on validation scenes: {rates}"


def _domain_row(domain: dict[str, Any] | None, path: str) -> str:
    if not domain:
        return f"none: add it with `vadx calibrate {path} DATA`"
    return (
        f"threshold {domain['threshold']:.2f} (the {domain['percentile']:g}th percentile of "
        f"{domain['windows']} validation windows), fitted on {domain['frames']} training frames"
    )
