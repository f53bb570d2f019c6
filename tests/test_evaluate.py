from __future__ import annotations

import csv
import json
from dataclasses import asdict

import numpy as np
import pytest

from vadx.errors import InputError
from vadx.train.evaluate import classification_metrics, write_evaluation

PROBS = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
LABELS = np.array([0, 0, 1, 1])


def test_metrics_values():
    metrics = classification_metrics(PROBS, LABELS, ("fight", "normal"), "normal")
    assert metrics.accuracy == 0.75  # predictions 0, 1, 1, 1
    fight, normal = metrics.per_class["fight"], metrics.per_class["normal"]
    assert (fight.precision, fight.recall) == (1.0, 0.5)
    assert fight.f1 == pytest.approx(2 / 3)
    assert (normal.precision, normal.recall) == (pytest.approx(2 / 3), 1.0)
    assert normal.f1 == pytest.approx(0.8)
    assert metrics.macro_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    assert metrics.weighted_f1 == pytest.approx((2 / 3 + 0.8) / 2)
    # p(fight) ranks fights .9, .4 against normals .2, .3: every fight above every normal
    assert fight.roc_auc == 1.0 and metrics.roc_auc_ovr_macro == 1.0
    assert metrics.anomaly_vs_normal_roc_auc == 1.0
    assert metrics.confusion_matrix == [[1, 1], [0, 2]]


def test_auc_is_none_for_an_absent_class():
    probs = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1]])
    metrics = classification_metrics(probs, np.array([0, 1]), ("a", "b", "normal"), "normal")
    assert metrics.per_class["normal"].roc_auc is None
    assert metrics.roc_auc_ovr_macro is None
    with pytest.raises(InputError, match="no clips"):
        classification_metrics(np.zeros((0, 2)), np.zeros(0, int), ("a", "b"), None)


def test_written_files(tmp_path):
    metrics = classification_metrics(PROBS, LABELS, ("fight", "normal"), "normal")
    write_evaluation(tmp_path, metrics, PROBS, LABELS, ["a.mp4", "b.mp4", "c.mp4", "d.mp4"])
    assert json.loads((tmp_path / "metrics.json").read_text())["accuracy"] == 0.75
    assert (tmp_path / "confusion.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    rows = list(csv.reader((tmp_path / "predictions.csv").open()))
    assert rows[0] == ["video", "label", "predicted", "p_fight", "p_normal"]
    assert rows[2][:3] == ["b.mp4", "fight", "normal"]


def test_frame_level_auc_over_annotated_long_videos(tmp_path, capsys):
    import torch

    from tests.conftest import TINY, run_cli
    from vadx.data.synth import render_long
    from vadx.models import CRNN, save_model
    from vadx.train.evaluate import evaluate_frames
    from vadx.video import write_mp4

    video = render_long(2, [("normal", 20), ("fire", 30), ("normal", 15)], (48, 48))
    write_mp4(tmp_path / "videos" / "long.mp4", video.frames, fps=10)
    _, start, end = video.events[0]
    notes = tmp_path / "notes.txt"
    notes.write_text(f"long.mp4 Fire {start} {end} -1 -1\n")
    torch.manual_seed(0)
    model = CRNN(TINY).eval()
    result = evaluate_frames(model, notes, tmp_path / "videos", tmp_path / "frames")
    assert result.frames == 65 and result.anomalous_frames == end - start + 1
    assert 0 <= result.frame_roc_auc <= 1
    written = json.loads((tmp_path / "frames" / "frame_metrics.json").read_text())
    assert list(written) == ["frame_roc_auc", "frames", "anomalous_frames", "per_video"]
    assert written == asdict(result)
    path = save_model(model, tmp_path / "model")
    argv = [
        "evaluate",
        str(path),
        str(tmp_path / "videos"),
        "--out",
        str(tmp_path / "eval"),
        "--annotations",
        str(notes),
    ]
    code, stdout, _ = run_cli(argv, capsys)
    assert code == 0 and "frame-level ROC-AUC" in stdout
    assert json.loads((tmp_path / "eval" / "frame_metrics.json").read_text())["frames"] == 65


def test_clips_are_scored_on_the_test_split_unless_told(tmp_path):
    import torch

    from tests.conftest import TINY
    from vadx.data.synth import SynthConfig, generate
    from vadx.models import CRNN
    from vadx.train.evaluate import evaluate_clips

    data = tmp_path / "data"
    generate(data, SynthConfig(clips=(1, 1, 2), num_frames=8, size=(48, 48), seed=3))
    torch.manual_seed(0)
    model = CRNN(TINY)
    metrics = evaluate_clips(model, data, tmp_path / "test", batch_size=3, workers=0)
    assert sum(row.support for row in metrics.per_class.values()) == 8  # 2 clips a class
    assert json.loads((tmp_path / "test" / "metrics.json").read_text())["accuracy"] == (
        metrics.accuracy
    )
    rows = list(csv.reader((tmp_path / "test" / "predictions.csv").open()))[1:]
    assert len(rows) == 8 and all(f"{data}/test/" in row[0] for row in rows)
    metrics = evaluate_clips(model, data, tmp_path / "val", "val", workers=0)
    assert sum(row.support for row in metrics.per_class.values()) == 4
    assert (tmp_path / "val" / "confusion.png").is_file()


def test_metrics_json_keeps_its_keys_and_order(tmp_path):
    metrics = classification_metrics(PROBS, LABELS, ("fight", "normal"), "normal")
    write_evaluation(tmp_path, metrics, PROBS, LABELS, ["a.mp4", "b.mp4", "c.mp4", "d.mp4"])
    written = json.loads((tmp_path / "metrics.json").read_text())
    assert list(written) == [
        "clips",
        "accuracy",
        "macro_f1",
        "weighted_f1",
        "roc_auc_ovr_macro",
        "per_class",
        "confusion_matrix",
        "class_names",
        "anomaly_vs_normal_roc_auc",
    ]
    assert list(written["per_class"]["fight"]) == [
        "precision",
        "recall",
        "f1",
        "support",
        "roc_auc",
    ]
    assert written["per_class"]["fight"]["support"] == 2
    assert written["class_names"] == ["fight", "normal"]
    # without a normal class the key is absent, not null
    plain = classification_metrics(PROBS, LABELS, ("fight", "walk"), None)
    assert "anomaly_vs_normal_roc_auc" not in plain.to_json()
    assert plain.anomaly_vs_normal_roc_auc is None
