from __future__ import annotations

import numpy as np
import pytest
import torch

from vadx.models import CRNN, CRNNConfig
from vadx.models.backbones.vgg import VGG19_LAYOUT

#: a VGG19 of the reference depth at 1/16 width: 4…32 channels, fast on 32×32 frames
TINY = CRNNConfig(
    backbone_args={"width": 0.0625},
    rnn_hidden=16,
    head_hidden=(12, 8),
    num_frames=4,
    frame_size=(32, 32),
)

#: on top of TINY, the pieces an imported Keras model brings: a conv_stack backbone (batch-norm
#: first, strided 'same' conv and pooling), flatten pooling, a bidirectional reset-before GRU and
#: an explicit head with batch-norm
IMPORTED_SHAPE = {
    "backbone": "conv_stack",
    "backbone_args": {
        "layers": [
            {"type": "batchnorm", "epsilon": 1e-3},
            {
                "type": "conv",
                "filters": 6,
                "kernel": [3, 3],
                "strides": [2, 2],
                "padding": "same",
                "activation": "relu",
                "name": "c1",
            },
            {"type": "maxpool", "pool": [3, 3], "strides": [2, 2], "padding": "same"},
        ]
    },
    "pooling": "flatten",
    "rnn": "gru_reset_before",
    "rnn_bidirectional": True,
    "head_hidden": (5,),
    "dropout": 0.0,
    "head_layers": (
        {"type": "dense", "units": 5, "activation": "tanh"},
        {"type": "batchnorm", "epsilon": 1e-3},
        {"type": "dense", "units": 4, "activation": "linear"},
    ),
}


@pytest.fixture
def tiny_model() -> CRNN:
    torch.manual_seed(0)
    return CRNN(TINY).eval()


@pytest.fixture
def tiny_clip() -> torch.Tensor:
    generator = torch.Generator().manual_seed(1)
    return torch.randn(2, TINY.num_frames, 3, *TINY.frame_size, generator=generator)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    """Run the ``vadx`` CLI in-process; returns (exit code, stdout, stderr)."""
    from vadx.cli import main

    code = 0
    try:
        main(argv)
    except SystemExit as exit_:
        code = exit_.code or 0
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def torchvision_vgg19_state_dict(seed: int = 0, width: float = 1.0) -> dict[str, torch.Tensor]:
    """A state dict laid out like torchvision's ``vgg19()`` (features + classifier)."""
    generator = torch.Generator().manual_seed(seed)
    state: dict[str, torch.Tensor] = {}
    index, channels = 0, 3
    for spec in VGG19_LAYOUT:
        if spec == "M":
            index += 1
            continue
        out = max(1, round(int(spec) * width))
        state[f"features.{index}.weight"] = torch.randn(out, channels, 3, 3, generator=generator)
        state[f"features.{index}.bias"] = torch.randn(out, generator=generator)
        index, channels = index + 2, out
    state["classifier.0.weight"] = torch.randn(8, 4, generator=generator)  # ignored on load
    state["classifier.0.bias"] = torch.randn(8, generator=generator)
    return state


def half_outside_domain(model: CRNN, frames):
    """Domain statistics for ``model`` fitted on ``frames`` (uint8 ``(N, H, W, 3)``) with a
    threshold at the median frame distance, so that about half the windows lie outside."""
    from dataclasses import replace

    import numpy as np

    from vadx.detect.domain import fit_domain
    from vadx.video import fit_frames, frames_to_clip

    fitted = fit_frames(frames, model.config.frame_size, model.config.fit)[0]
    clip = frames_to_clip(fitted, model.config.mean, model.config.std)[None]
    with torch.no_grad():
        features = model.eval().frame_features(clip)[0].numpy()
    clips = features[: len(features) // 4 * 4].reshape(-1, 4, features.shape[-1])
    stats = fit_domain(clips[::2], None, clips[1::2])
    return replace(stats, threshold=float(np.median(stats.frame_distances(features))))


def long_video(path, seed: int, segments, size, fps: float = 10):
    """A synthetic street video of ``segments`` ((class, frames), …) written to ``path``;
    returns the path and its frames."""
    from vadx.data.synth import render_long
    from vadx.video import write_mp4

    frames = render_long(seed, segments, size).frames
    return write_mp4(path, frames, fps=fps), frames


def tiny_checkpoint(path, seed: int = 0, config: CRNNConfig = TINY):
    """An untrained tiny model saved at ``path`` (its weights from ``seed``); returns the path."""
    from vadx.models import save_model

    torch.manual_seed(seed)
    return save_model(CRNN(config), path)


#: `vadx train` options of a tiny model that trains in seconds
TINY_TRAIN_ARGS = [
    "--backbone",
    "vgg19",
    "--width",
    "0.0625",
    "--frames",
    "4",
    "--size",
    "32",
    "--freeze",
    "none",
    "--no-cache-features",
    "--batch-size",
    "4",
    "--workers",
    "0",
    "--patience",
    "0",
    "--seed",
    "2",
]


@pytest.fixture(scope="module")
def streets(tmp_path_factory):
    """Two recorded streets, as frame folders at 25 fps: a fire, and a fight (the console's
    tests)."""
    from vadx.data.synth import render_long
    from vadx.video import write_png

    root = tmp_path_factory.mktemp("streets")
    fire = render_long(1, [("normal", 12), ("fire", 20), ("normal", 10)], (48, 48)).frames
    fight = render_long(2, [("normal", 10), ("fight", 24), ("normal", 10)], (48, 48)).frames
    for name, frames in (("fire", fire), ("fight", fight)):
        (root / name).mkdir()
        for t, frame in enumerate(frames):
            write_png(root / name / f"{t:05d}.png", frame)
    return root / "fire", root / "fight"


def stretched_model(video) -> CRNN:
    """An untrained tiny model whose probabilities move from window to window on ``video``:
    its logits centred on the video's mean, then stretched 300× (untrained, they barely vary)."""
    from vadx.detect import DetectConfig, detect

    torch.manual_seed(0)
    model = CRNN(
        CRNNConfig(
            backbone_args={"width": 0.0625},
            num_frames=4,
            frame_size=(32, 32),
            rnn_hidden=16,
            head_hidden=(8,),
        )
    ).eval()
    logits = np.log(detect(model, video, DetectConfig(on=1.0, off=0.0)).window_probabilities)
    last = model.head[-1]
    with torch.no_grad():
        last.bias -= torch.from_numpy(logits.mean(0)).float()
        last.weight.mul_(300)
        last.bias.mul_(300)
    return model


@pytest.fixture(scope="module")
def stretched(streets):
    """The stretched model (:func:`stretched_model`) of the fire street: events do happen."""
    return stretched_model(streets[0])
