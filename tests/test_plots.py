"""The library's plots leave matplotlib as the caller set it: the backend is not switched and
pyplot gains no open figure."""

from __future__ import annotations

import cv2
import matplotlib
import numpy as np
import pytest
import torch

from tests.conftest import TINY
from vadx.data.synth import render_long
from vadx.detect import detect
from vadx.detect.files import scores_png
from vadx.models import CRNN
from vadx.quality.xai_eval import MethodSummary, MetricSummary, plot_summary
from vadx.render.figures import frame_strip
from vadx.render.plots import png_bytes
from vadx.train.evaluate import confusion_png
from vadx.video import write_mp4


@pytest.fixture
def svg_backend():
    """A backend the library never picks itself; the test's own is restored after."""
    import matplotlib.pyplot as plt

    previous = matplotlib.get_backend()
    matplotlib.use("svg")
    yield plt
    plt.close("all")
    matplotlib.use(previous)


def picture_size(png: bytes) -> tuple[int, int]:
    """``(height, width)`` of a PNG."""
    return cv2.imdecode(np.frombuffer(png, np.uint8), cv2.IMREAD_COLOR).shape[:2]


def test_png_bytes_renders_a_figure_at_the_asked_resolution(svg_backend):
    from matplotlib.figure import Figure

    figure = Figure(figsize=(3, 2))
    figure.subplots().plot([0, 1], [0, 1])
    assert picture_size(png_bytes(figure, dpi=50)) == (100, 150)
    assert matplotlib.get_backend() == "svg" and svg_backend.get_fignums() == []


def test_the_library_plots_leave_the_backend_and_pyplot_alone(svg_backend, tmp_path):
    video = render_long(1, [("normal", 8), ("fire", 8)], (48, 48))
    torch.manual_seed(0)
    detection = detect(CRNN(TINY).eval(), write_mp4(tmp_path / "v.mp4", video.frames, fps=10))
    frames = np.random.default_rng(0).integers(0, 255, (5, 40, 60, 3), dtype=np.uint8)
    curves = {"frame_occlusion": np.array([0.1, -0.2, 0.4, 0.0, 0.3])}
    summary = {
        "gradcam": MethodSummary(
            {"pointing_game": MetricSummary(0.5, 0.1, 4), "deletion_auc": MetricSummary(0.2, 0, 4)}
        ),
        "saliency": MethodSummary({"pointing_game": MetricSummary(0.7, 0.1, 4)}),
    }
    plot_summary(tmp_path / "summary.png", summary)
    sizes = {
        "scores": picture_size(scores_png(detection)),
        "confusion": picture_size(confusion_png(np.array([[3, 1], [0, 2]]), ["fight", "normal"])),
        "strip": frame_strip(frames, curves, [0, 2, 4, 6, 8], "t").shape,
        "summary": picture_size((tmp_path / "summary.png").read_bytes()),
    }
    # each figure's size in inches × its dpi: 10×3.8 at 100; 4.4×3.7 at 110; 6×(0.68 + 2.4)
    # at 110 (five 40×60 thumbnails over 85 % of 6 inches are 0.68 high); 5.6×3.2 at 110
    assert sizes == {
        "scores": (380, 1000),
        "confusion": (407, 484),
        "strip": (338, 660, 3),
        "summary": (352, 616),
    }
    assert matplotlib.get_backend() == "svg"
    assert svg_backend.get_fignums() == []
