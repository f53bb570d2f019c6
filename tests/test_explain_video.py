"""vadx explain / vadx compare: files written, video decodes back, audit record, errors."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from tests.conftest import TINY, long_video, run_cli, tiny_checkpoint
from vadx.detect import DetectConfig, detect
from vadx.detect.files import read_detection
from vadx.errors import InputError
from vadx.explanations.video import (
    EXPORTS,
    ExplainSettings,
    compare_models,
    explain_video,
    model_names,
)
from vadx.models import load_model
from vadx.models.weights import file_sha256
from vadx.render.overlay import band_height
from vadx.video.decode import VideoReader
from vadx.video.encode import write_mp4


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("explain-video")
    segments = [("normal", 10), ("fight", 24), ("normal", 8)]
    video, frames = long_video(root / "street.mp4", 3, segments, (60, 80))
    tiny_checkpoint(root / "a")
    tiny_checkpoint(root / "b", seed=1, config=TINY.replace(rnn_hidden=8))
    write_mp4(root / "other.mp4", frames[::-1].copy(), fps=10)
    return root, video


def test_one_clip_writes_the_report_and_the_record_and_pictures_only_when_asked(assets, tmp_path):
    root, video = assets
    model = load_model(root / "a")
    lean = ExplainSettings(methods=("gradcam", "saliency"), view="contours")
    explain_video(model, video, tmp_path / "lean", lean, start=5, end=35)
    assert sorted(p.name for p in (tmp_path / "lean").iterdir()) == [
        "explanation.npz",
        "manifest.json",
        "report.html",
        "summary.json",
    ]

    settings = ExplainSettings(methods=("gradcam", "saliency"), view="contours", exports=EXPORTS)
    summary = explain_video(model, video, tmp_path, settings, start=5, end=35)
    (clip,) = summary.clips
    assert clip.frames == [5, 15, 25, 35]
    written = json.loads((tmp_path / "summary.json").read_text())
    assert written == json.loads(json.dumps(summary.to_json()))
    assert set(summary.to_json()["clips"][0]) == {  # the file's fields, as before the types
        "folder",
        "frames",
        "predicted",
        "probability",
        "target",
        "report",
        "domain",
        "trust",
    }
    names = {p.name for p in tmp_path.iterdir()}
    band = band_height(80)  # the label under each frame
    for method in ("gradcam", "saliency"):
        assert {f"{method}.mp4", f"{method}.gif", f"{method}-sheet.png"} <= names
        assert sorted(p.name for p in (tmp_path / "frames" / method).iterdir()) == [
            "000005.png",
            "000015.png",
            "000025.png",
            "000035.png",
        ]
        with VideoReader(tmp_path / f"{method}.mp4") as mp4:
            assert mp4.info.num_frames == 4
            assert (mp4.info.height, mp4.info.width) == (60 + band, 80)
            assert mp4.info.fps == pytest.approx(1.0)  # 10 fps source, frames 10 apart
        with Image.open(tmp_path / f"{method}.gif") as gif:
            assert gif.n_frames == 4 and gif.size == (80, 60 + band)
    assert {
        "methods.png",
        "views.png",
        "strip.png",
        "report.html",
        "manifest.json",
        "explanation.npz",
        "summary.json",
    } <= names
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["source"]["sha256"] == file_sha256(video)
    assert manifest["model_checkpoint"]["weights_sha256"] == model.checkpoint.weights_sha256
    assert manifest["clip_frames"] == [5, 15, 25, 35] and manifest["render"]["view"] == "contours"
    with np.load(tmp_path / "explanation.npz") as arrays:
        assert arrays["gradcam/display"].shape == (1, 4, 32, 32)
        display = arrays["gradcam/display"][0]
    report = (tmp_path / "report.html").read_text()
    assert "http://" not in report and "https://" not in report
    assert manifest["source"]["sha256"] in report
    # the report carries each method's maps once, 8-bit, at the model's input size
    player = json.loads(report.split('id="player-data">')[1].split("</script>")[0])
    atlas = player["methods"]["gradcam"]["maps"].split(",", 1)[1]
    decoded = cv2.imdecode(np.frombuffer(base64.b64decode(atlas), np.uint8), cv2.IMREAD_UNCHANGED)
    assert decoded.shape == (4 * 32, 32)
    assert np.abs(decoded.astype(int) - np.round(display.reshape(-1, 32) * 255)).max() <= 1
    assert len(player["frames"]) == 4 and player["box"] == [0, 0, 32, 32]  # stretched to fill


def test_flagged_windows_explain_each_event_and_none_says_so(assets, tmp_path):
    root, video = assets
    model = load_model(root / "a")
    from vadx.detect import DetectConfig

    everything = DetectConfig(on=0.0, off=0.0, min_frames=1)  # every frame is "anomalous"
    summary = explain_video(
        model,
        video,
        tmp_path / "all",
        ExplainSettings(methods=("gradcam",)),
        windows="flagged",
        detect_config=everything,
    )
    assert len(summary.clips) == 1 and summary.clips[0].target != "normal"
    nothing = DetectConfig(on=1.0, off=1.0, min_frames=1000)
    summary = explain_video(
        model, video, tmp_path / "none", ExplainSettings(), windows="flagged", detect_config=nothing
    )
    assert summary.clips == [] and "no window was flagged" in summary.note
    one = explain_video(
        model,
        video,
        tmp_path / "w",
        ExplainSettings(methods=("gradcam",), temporal=(), timeline=False),
        window=2,
    )
    assert (tmp_path / "w" / one.clips[0].folder.split("/")[-1] / "report.html").is_file()


def test_bad_requests_fail_before_any_work(assets, tmp_path):
    root, video = assets
    model = load_model(root / "a")
    with pytest.raises(InputError, match="frame span 30–90 is not inside .*: it has 42 frames"):
        explain_video(model, video, tmp_path, ExplainSettings(timeline=False), start=30, end=90)
    with pytest.raises(
        InputError, match="start/end choose one clip; they cannot be combined with windows"
    ):
        explain_video(model, video, tmp_path, windows="all", start=3)
    with pytest.raises(InputError, match="window 99 does not exist"):
        explain_video(model, video, tmp_path, window=99)
    with pytest.raises(InputError, match="unknown view 'x-ray'"):
        ExplainSettings(view="x-ray")
    with pytest.raises(InputError, match="unknown temporal estimator 'attention'"):
        ExplainSettings(temporal=("attention",))


def test_compare_puts_models_side_by_side(assets, tmp_path):
    root, video = assets
    models = {"a": load_model(root / "a"), "b": load_model(root / "b")}
    summary = compare_models(models, video, tmp_path, ExplainSettings(methods=("gradcam",)))
    assert [m.model for m in summary.models] == ["a", "b"]
    assert summary.models[0].probabilities != summary.models[1].probabilities
    image = np.asarray(Image.open(tmp_path / "compare.png"))
    assert image.shape[0] > 3 * 112  # frame row + two model rows
    assert (tmp_path / "models" / "b" / "manifest.json").is_file()
    with pytest.raises(InputError, match="at least two models"):
        compare_models({"a": models["a"]}, video, tmp_path)


def test_compared_models_are_named_by_their_folders_and_told_apart():
    assert model_names([Path("runs/a/best"), Path("runs/b/best"), "m/vgg"]) == [
        "a/best",
        "b/best",
        "vgg",
    ]
    assert model_names(["x/m", "y/m", "z/last", "z/best"]) == ["m #1", "m #2", "z/last", "z/best"]


def test_cli_explain_and_compare(assets, tmp_path, capsys):
    root, video = assets
    code, out, err = run_cli(
        [
            "explain",
            str(root / "a"),
            str(video),
            "--out",
            str(tmp_path / "x"),
            "--methods",
            "gradcam",
            "--view",
            "contour",
            "--target",
            "anomaly",
            "--no-timeline",
            "--quality",
            "--mp4",
        ],
        capsys,
    )
    assert code == 0, err
    assert "report.html" in out and (tmp_path / "x" / "report.html").is_file()
    assert (tmp_path / "x" / "gradcam.mp4").is_file()  # asked for; nothing else rendered
    assert not any((tmp_path / "x" / name).exists() for name in ("gradcam.gif", "frames"))
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert manifest["target"] == "anomaly"
    scores = manifest["quality"]
    assert set(scores) == {
        "gradcam",
        "frame_shapley",
        "frame_occlusion",
        "gradient_norm",
        "gradcam_mass",
    }
    assert {"deletion_auc", "deletion_auc_random", "insertion_auc"} <= set(scores["gradcam"])
    assert "temporal_deletion_auc_random" in scores["frame_occlusion"]
    assert 'id="quality"' in (tmp_path / "x" / "report.html").read_text()
    code, out, err = run_cli(
        ["compare", str(root / "a"), str(root / "b"), str(video), "--out", str(tmp_path / "c")],
        capsys,
    )
    assert code == 0, err
    assert "compare.png" in out
    code, _, err = run_cli(
        [
            "explain",
            str(root / "a"),
            str(video),
            "--out",
            str(tmp_path / "y"),
            "--methods",
            "gradcam,lime",
        ],
        capsys,
    )
    assert code == 2 and "unknown method 'lime'" in err and not (tmp_path / "y").exists()
    code, _, err = run_cli(["compare", str(root / "a"), str(video), "--out", str(tmp_path)], capsys)
    assert code == 2 and "at least two models" in err


def test_cli_explain_trust_gives_every_map_a_verdict_in_manifest_summary_and_report(
    assets, tmp_path, capsys
):
    root, video = assets
    argv = ["explain", str(root / "a"), str(video), "--out", str(tmp_path / "t")]
    code, _, err = run_cli(
        [*argv, "--methods", "gradcam,saliency", "--temporal", "gradient_norm", "--trust"],
        capsys,
    )
    assert code == 0, err
    manifest = json.loads((tmp_path / "t" / "manifest.json").read_text())
    trust = manifest["trust"]
    assert set(trust) == {"gradcam", "saliency", "gradient_norm"}
    for record in trust.values():
        assert record["verdict"] in ("trustworthy", "weak", "contradictory")
        assert set(record["checks"]) >= {"faithfulness", "confidence", "domain"}
        assert (record["verdict"] == "trustworthy") == (record["reasons"] == [])
    summary = json.loads((tmp_path / "t" / "summary.json").read_text())
    assert summary["clips"][0]["trust"] == {m: r["verdict"] for m, r in trust.items()}
    page = (tmp_path / "t" / "report.html").read_text()
    assert 'id="trust"' in page and f'class="trust {trust["gradcam"]["verdict"]}"' in page
    # off by default: nothing about trust anywhere
    code, _, err = run_cli([*argv, "--methods", "gradcam", "--force"], capsys)
    assert code == 0, err
    assert "trust" not in json.loads((tmp_path / "t" / "manifest.json").read_text())
    assert json.loads((tmp_path / "t" / "summary.json").read_text())["clips"][0]["trust"] is None
    assert 'id="trust"' not in (tmp_path / "t" / "report.html").read_text()


def test_an_earlier_detection_makes_the_timeline_and_the_flagged_windows(
    assets, tmp_path, capsys, monkeypatch
):
    root, video = assets
    cut = ["--on", "0", "--off", "0", "--min-frames", "1"]  # one event over the whole video
    code, _, err = run_cli(
        [
            "detect",
            str(root / "a"),
            str(video),
            "--out",
            str(tmp_path / "d"),
            "--no-annotate",
            *cut,
        ],
        capsys,
    )
    assert code == 0, err
    model = load_model(root / "a")
    fresh = explain_video(
        model,
        video,
        tmp_path / "fresh",
        ExplainSettings(methods=("gradcam",)),
        windows="flagged",
        detect_config=DetectConfig(on=0, off=0, min_frames=1),
    )
    monkeypatch.setattr("vadx.explanations.video.detect", None)  # no detection may run again
    earlier = read_detection(tmp_path / "d", model, video)
    reused = explain_video(
        model,
        video,
        tmp_path / "reused",
        ExplainSettings(methods=("gradcam",)),
        windows="flagged",
        detection=earlier,
    )
    assert [c.frames for c in reused.clips] == [c.frames for c in fresh.clips]
    report = (Path(reused.clips[0].report)).read_text()
    assert 'id="timeline"' in report  # the earlier detection's scores make the timeline
    np.testing.assert_allclose(
        earlier.smoothed_score,
        detect(model, video, DetectConfig(on=0, off=0, min_frames=1)).smoothed_score,
        atol=1e-5,
    )

    code, _, err = run_cli(
        [
            "explain",
            str(root / "a"),
            str(video),
            "--out",
            str(tmp_path / "c"),
            "--methods",
            "gradcam",
            "--detection",
            str(tmp_path / "d"),
        ],
        capsys,
    )
    assert code == 0, err
    detected, other, fresh = tmp_path / "d", root / "other.mp4", tmp_path / "fresh"
    for name, source, folder, why in (
        ("b", video, detected, "not of this model"),
        ("a", other, detected, "another video"),
        ("a", video, fresh, "holds no detection"),
    ):
        code, _, err = run_cli(
            [
                "explain",
                str(root / name),
                str(source),
                "--out",
                str(tmp_path / "e"),
                "--methods",
                "gradcam",
                "--detection",
                str(folder),
            ],
            capsys,
        )
        assert code == 2 and why in err and err.count("error:") == 1, err


def test_a_request_names_one_window_apart_from_the_window_mode(tmp_path):
    from vadx.explanations.video import ExplainRequest

    assert ExplainRequest("v.mp4").is_span and ExplainRequest("v.mp4").needs_detection
    lean = ExplainRequest("v.mp4", ExplainSettings(timeline=False))
    assert not lean.needs_detection
    one = ExplainRequest("v.mp4", ExplainSettings(timeline=False), window=3)
    assert not one.is_span and one.needs_detection
    with pytest.raises(InputError, match="start/end choose one clip"):
        ExplainRequest("v.mp4", window=3, end=9)
    with pytest.raises(InputError, match="give window number 3 as window"):
        ExplainRequest("v.mp4", windows=3)  # type: ignore[arg-type]
    with pytest.raises(InputError, match="windows must be one of one, all, flagged"):
        ExplainRequest("v.mp4", windows="some")  # type: ignore[arg-type]


def test_the_manifest_entries_of_a_clip_keep_their_order_and_optional_parts(assets):
    from vadx.explanations.clip import explain_clip
    from vadx.explanations.video import ClipAudit, SourceRecord

    root, video = assets
    model = load_model(root / "a")
    with VideoReader(video) as reader:
        frames = reader.read([0, 1, 2, 3]).data
        source = SourceRecord.of(reader.info, "abc")
    clip = explain_clip(model, frames, [0, 1, 2, 3], 10.0, ExplainSettings(methods=("gradcam",)))
    audit = ClipAudit.of(clip, ExplainSettings(), model, source)
    document = audit.to_json()
    assert list(document) == [
        "source",
        "clip_frames",
        "clip_fps",
        "model_checkpoint",
        "render",
        "preprocessing",
        "domain",
    ]
    assert document["source"] == {
        "path": str(video),
        "sha256": "abc",
        "frames": 42,
        "fps": 10.0,
        "size": [60, 80],
        "announced_frames": reader.info.announced_frames,
        "truncated": False,
    }
    assert list(document["model_checkpoint"]) == ["path", "id", "weights_sha256", "created"]
    scored = replace(audit, quality={"gradcam": {"deletion_auc": 0.5}}).to_json()
    assert list(scored)[-1] == "quality" and "trust" not in scored
