from __future__ import annotations

import json

from tests.conftest import run_cli
from vadx.demo import DemoSummary, RealFootage, match_events
from vadx.detect import Event


def event(kind, start, end):
    return Event(start, end, start / 10, end / 10, kind, 0.9, 0.8)


def test_match_events():
    true = [("fight", 50, 99), ("fire", 150, 199), ("shooting", 250, 299)]
    found = [event("fight", 45, 110), event("fire", 120, 240), event("fight", 260, 280)]
    matches = match_events(true, found, tolerance=20)
    assert [m.found for m in matches] == [True, True, False]
    assert matches[0].start_error == -5 and matches[0].end_error == 11
    assert matches[0].within_tolerance and not matches[1].within_tolerance


def test_the_summary_is_written_as_summary_json_has_always_held_it():
    true = [("fight", 50, 99), ("fire", 150, 199)]
    found = [event("fight", 45, 110)]
    summary = DemoSummary(
        test_accuracy=0.75,
        test_macro_f1=0.5,
        best_epoch=2,
        epochs_run=3,
        train_clips_per_second=None,
        true_events=2,
        detected_events=found,
        matches=match_events(true, found, tolerance=20),
        window_frames=20,
        paths={"data": "d"},
        reports=["r/report.html"],
        synthetic_domain={"checked": False},
        real_footage=RealFootage("bikes.mp4", {"checked": True, "share_outside": 1.0}, 0),
    )
    assert (summary.events_found, summary.events_within_a_window) == (1, 1)
    assert json.dumps(summary.to_json()) == (
        '{"test_accuracy": 0.75, "test_macro_f1": 0.5, "best_epoch": 2, "epochs_run": 3, '
        '"train_clips_per_second": null, "true_events": 2, "detected_events": [{"start_frame": '
        '45, "end_frame": 110, "start_time": 4.5, "end_time": 11.0, "class_name": "fight", '
        '"peak_probability": 0.9, "mean_probability": 0.8, "out_of_domain": null, "window": '
        'null}], "matches": [{"class": "fight", "start": 50, "end": 99, "found": true, '
        '"detected_start": 45, "detected_end": 110, "start_error": -5, "end_error": 11, '
        '"within_tolerance": true}, {"class": "fire", "start": 150, "end": 199, "found": false}]'
        ', "events_found": 1, "events_within_a_window": 1, "window_frames": 20, "paths": '
        '{"data": "d"}, "reports": ["r/report.html"], "domain": {"model_knows": "synthetic '
        'scenes only (vadx synth)", "synthetic_video": {"checked": false}, "real_video": '
        '{"path": "bikes.mp4", "checked": true, "share_outside": 1.0, "events": 0}}}'
    )


def test_demo_end_to_end_small(tmp_path, capsys):
    out = tmp_path / "demo"
    code, stdout, stderr = run_cli(
        ["demo", "--out", str(out), "--epochs", "1", "--clips", "2,1,1"], capsys
    )
    assert code == 0, stderr
    summary = json.loads((out / "summary.json").read_text())
    assert 0 <= summary["test_accuracy"] <= 1 and summary["true_events"] == 3
    assert len(summary["matches"]) == 3
    for name in (
        "data/manifest.json",
        "run/best/config.json",
        "evaluation/metrics.json",
        "evaluation/confusion.png",
        "long_video.mp4",
        "detection/events.json",
        "detection/annotated.mp4",
        "detection/scores.png",
    ):
        assert (out / name).is_file(), name
    assert "test accuracy" in stdout and "summary" in stdout
    domain = summary["domain"]
    assert domain["synthetic_video"]["checked"] and domain["real_video"]["checked"]
    assert (out / "real-footage" / "events.json").is_file()
    assert "knows synthetic scenes only" in stdout and "docs/domain.md" in stdout
    explained = json.loads((out / "explanation" / "summary.json").read_text())
    assert summary["reports"] == [clip["report"] for clip in explained["clips"]]
    assert len(explained["clips"]) == len(summary["detected_events"])
    for report in summary["reports"]:
        assert report in stdout.replace("\n", "") and (out / "explanation").is_dir()
    # running it again continues where it stopped instead of starting over
    code, _, stderr = run_cli(
        ["demo", "--out", str(out), "--epochs", "1", "--clips", "2,1,1"], capsys
    )
    assert code == 0, stderr
