"""The operators' console, first part (issue 30): cameras declared in YAML, and one engine for
every camera whose events equal ``vadx detect``'s on the same frames, with the CNN batched
across cameras, one copy per model, and a dead camera that holds up no other."""

from __future__ import annotations

import threading
import time
from dataclasses import replace

import pytest

from tests.test_watch_engine import as_tuples, assert_same_events, thresholds
from vadx.console.cameras import CameraConfig, camera_from, read_cameras
from vadx.console.engine import CameraHub
from vadx.detect import DetectConfig, detect
from vadx.errors import ConfigError, InputError


# --------------------------------------------------------------------------- the YAML file
def test_a_cameras_file_is_read_with_its_paths_taken_from_its_folder(tmp_path):
    (tmp_path / "cameras.yaml").write_text(
        "cameras:\n"
        "  front-door:\n"
        "    source: rtsp://10.0.0.5/stream1\n"
        "    model: models/street\n"
        "    detect: {on: 0.6, off: 0.4, smooth: 7, per_class: true}\n"  # YAML 1.2: on is no bool
        "    domain: suppress\n"
        "  bay_2:\n"
        "    source: recordings/bay.mp4\n"
        "    model: /srv/models/street\n"
        "    loop: true\n"
        "    enabled: false\n"
        "  webcam:\n"
        "    source: 0\n"
        "    model: street\n"  # not a folder there: a served model's name
    )
    (tmp_path / "models" / "street").mkdir(parents=True)
    front, bay, webcam = read_cameras(tmp_path / "cameras.yaml")
    assert (front.name, front.source, front.model) == (
        "front-door",
        "rtsp://10.0.0.5/stream1",
        str(tmp_path / "models/street"),
    )
    expected = DetectConfig(on=0.6, off=0.4, smooth=7, per_class=True, domain="suppress")
    assert front.detection == expected
    assert not front.is_file and bay.is_file and not webcam.is_file
    assert bay.source == str(tmp_path / "recordings/bay.mp4") and bay.model == "/srv/models/street"
    assert (bay.loop, bay.enabled, bay.pace, webcam.source, webcam.model) == (
        True,
        False,
        True,
        0,
        "street",
    )


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"source": "a.mp4"}, "f: cameras.x.model: missing: every camera needs a source and a"),
        (
            {"source": "a", "model": "m", "detect": {"on": 3}},
            "x.detect: on must be a finite number",
        ),
        (
            {"source": "a", "model": "m", "detect": {"onn": 1}},
            "detect: unknown setting 'onn'; known",
        ),
        ({"source": "a", "model": "m", "colour": 1}, "x.colour: unknown setting; a camera has sou"),
        ({"source": "a", "model": "m", "domain": "x"}, "domain: must be flag, suppress, off (got"),
        (
            {"source": 5.5, "model": "m"},
            "x.source: give a URL, a video file or a webcam index (got",
        ),
        ({"source": -1, "model": "m"}, "x.source: a webcam index is 0 to 63, got -1"),
        ({"source": " ", "model": "m"}, "x.source: is empty: give a URL, a video file or a webcam"),
        ({"source": "a", "model": "m", "detect": {"on": 0.2, "off": 0.5}}, "need 0 ≤ off ≤ on"),
        (
            {"source": "a", "model": "m", "detect": {"smooth": 0}},
            "smooth must be an integer from 1",
        ),
        ({"source": "a", "model": "m", "detect": {"smooth": 2.5}}, "smooth must be an integer"),
        ({"source": "a", "model": "m", "enabled": "yes"}, "x.enabled: Input should be a valid bo"),
        ({"source": "a", "model": "m", "detect": {"per_class": 1}}, "per_class must be true or"),
        ("a.mp4", "f: cameras.x: a camera is a mapping of settings, got str"),
    ],
)
def test_each_fault_in_a_camera_is_one_line_naming_its_place(document, message):
    with pytest.raises(ConfigError) as caught:
        camera_from("x", document, "f: cameras.x")
    assert message in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("cameras: [\n", "not valid YAML (line 2, column 1)"),
        ("mqtt: {}\ncameras: {a: {source: x, model: m}}\n", "unknown key 'mqtt': the file holds"),
        ("cameras: {}\n", "cameras: give at least one camera, as name: settings"),
        ("- 1\n", "it has no 'cameras' mapping"),
        ("cameras: {a: {source: x, model: m, enabled: yes}}\n", "enabled: Input should be a valid"),
        (
            "cameras:\n  a: {source: x, model: m}\n  a: {source: y, model: m}\n",
            "'a' is given twice",
        ),
        ("cameras:\n  bad name: {source: x, model: m}\n", "name is letters, digits, '-' and '_'"),
    ],
)
def test_a_bad_cameras_file_is_one_line(tmp_path, text, message):
    path = tmp_path / "cameras.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        read_cameras(path)
    with pytest.raises(ConfigError, match="no such file"):
        read_cameras(tmp_path / "none.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00cameras")
    with pytest.raises(ConfigError, match="not a text file"):
        read_cameras(tmp_path / "binary.yaml")


# ------------------------------------------------------------------------------ the engine
def camera(name, source, config, **settings) -> CameraConfig:
    detect_settings = {
        k: getattr(config, k) for k in ("stride", "step", "smooth", "on", "off", "min_frames")
    }
    return CameraConfig(
        name=name,
        source=str(source),
        model="street-model",
        detect={k: v for k, v in detect_settings.items() if v is not None},
        domain="off",
        **{"pace": False, **settings},
    )


def test_every_camera_gets_the_events_of_detect_with_one_cnn_batch_across_cameras(
    streets, stretched, tmp_path
):
    street, model = streets, stretched
    fire, fight = street
    config = thresholds(model, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    loads, alerts = [], []
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all" * 100)
    cameras = [
        camera("door", fire, config),
        camera("bay", fight, config),
        camera("yard", fire, config),  # the same file again: its own windows and events
        camera("dead", broken, config),  # fails at once; holds up nobody
    ]
    hub = CameraHub(
        cameras,
        load=lambda path: loads.append(path) or model,
        on_alert=lambda name, alert: alerts.append((name, alert)),
        batch_size=24,
    )
    assert loads == ["street-model"] and len(hub.models) == 1  # one copy for every camera
    hub.run_to_end(timeout=120)
    for name, video in (("door", fire), ("bay", fight), ("yard", fire)):
        ended = [a.event for n, a in alerts if n == name and a.kind == "ended"]
        expected = detect(model, video, config).events
        assert expected and sorted(ended, key=lambda e: e.start_frame) == ended
        assert_same_events(as_tuples(ended), as_tuples(expected))
    status = {s.name: s for s in hub.status()}
    assert status["dead"].state == "failed" and "broken.mp4" in status["dead"].error
    assert [status[n].state for n in ("door", "bay", "yard")] == ["ended"] * 3
    assert status["door"].frames == 42 and status["bay"].frames == 44
    assert status["door"].events == sum(1 for n, a in alerts if n == "door" and a.kind == "started")
    # the CNN ran on frames of several cameras at once: more than one camera's share of 8
    assert max(hub.cnn_batches) > 24 // 4 and sum(hub.cnn_batches) == sum(
        c.detector.cnn_frames for c in hub._cameras.values() if c is not None
    )
    hub.close()


def test_cameras_are_added_changed_and_removed_while_the_hub_runs(streets, stretched):
    street, model = streets, stretched
    fire, fight = street
    config = thresholds(model, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    alerts = []
    looped = camera("door", fire, config, loop=True)
    hub = CameraHub(
        [looped], load=lambda path: model, on_alert=lambda n, a: alerts.append((n, a))
    ).start()
    try:
        wait_for(lambda: hub.status()[0].frames > 2 * 42)  # the file analysed a third time
        door = hub.status()[0]
        assert door.state == "running" and door.reconnects >= 2 and door.connected
        assert door.fps > 0 and door.last_frame_at is not None and door.error is None
        # each pass of the looped file is a session: events end with it, as detect's would
        first_pass = [a.event for n, a in alerts if a.kind == "ended" and a.session == 0]
        assert_same_events(as_tuples(first_pass), as_tuples(detect(model, fire, config).events))
        hub.add(camera("bay", fight, config, loop=True))
        wait_for(lambda: hub.status()[1].frames > 0)
        with pytest.raises(InputError, match="there is already a camera 'bay'"):
            hub.add(camera("bay", fight, config))
        hub.change(camera("bay", fight, replace(config, on=1.0, off=1.0), loop=True))
        assert hub.config("bay").detection.on == 1.0
        hub.remove("door")
        assert hub.names == ["bay"] and [s.name for s in hub.status()] == ["bay"]
        with pytest.raises(InputError, match="no camera 'door'; the cameras are: bay"):
            hub.remove("door")
        hub.add(camera("off", fire, config, enabled=False))
        assert hub.status()[1].state == "disabled"
    finally:
        hub.close()
    assert {s.state for s in hub.status() if s.name == "bay"} == {"stopped"}


def test_a_camera_faster_than_the_analysis_drops_its_oldest_frames(streets, stretched):
    street, model = streets, stretched
    fire, _ = street
    paced = camera("door", fire, DetectConfig(), pace=True, loop=True)
    hub = CameraHub([paced], load=lambda path: model, queue_size=2)
    capture = hub._cameras["door"].capture
    capture.start()  # frames arrive at 25 fps while nothing analyses them
    try:
        wait_for(lambda: hub.status()[0].dropped >= 5)
        hub.step()
        status = hub.status()[0]
        assert status.frames == 2 and status.dropped >= 5  # the two newest were analysed
    finally:
        hub.close()


def wait_for(condition, seconds: float = 60.0) -> None:
    began = time.monotonic()
    while not condition():
        assert time.monotonic() - began < seconds, "timed out"
        time.sleep(0.02)


def test_one_analysis_thread_for_all_cameras(streets, stretched):
    street, model = streets, stretched
    fire, fight = street
    hub = CameraHub(
        [
            camera("a", fire, DetectConfig(), loop=True),
            camera("b", fight, DetectConfig(), loop=True),
        ],
        load=lambda path: model,
    ).start()
    try:
        wait_for(lambda: all(s.frames > 0 for s in hub.status()))
        names = [t.name for t in threading.enumerate()]
        assert names.count("vadx-hub") == 1
        assert {"vadx-capture-a", "vadx-capture-b"} <= set(names)
    finally:
        hub.close()


def test_the_cnn_in_onnx_runtime_gives_the_events_of_detect(streets, stretched):
    """``runtime="onnx"``: the cameras' per-frame CNN in ONNX Runtime, exported once per
    model, batched across cameras as in PyTorch; the events are detect's."""
    pytest.importorskip("onnxruntime")
    fire, fight = streets
    config = thresholds(stretched, fire, DetectConfig(stride=2, step=1, domain="off"), 0.3, 0.7)
    alerts = []
    hub = CameraHub(
        [camera("door", fire, config), camera("bay", fight, config)],
        load=lambda _: stretched,
        on_alert=lambda name, alert: alerts.append((name, alert)),
        runtime="onnx",
    )
    assert list(hub._encoders) == [id(stretched)]  # one graph for both cameras
    hub.run_to_end(timeout=120)
    for name, video in (("door", fire), ("bay", fight)):
        ended = [a.event for n, a in alerts if n == name and a.kind == "ended"]
        expected = detect(stretched, video, config).events
        assert expected
        assert_same_events(as_tuples(ended), as_tuples(expected))
    hub.remove("door")
    assert list(hub._encoders) == [id(stretched)]  # bay still uses it
    hub.remove("bay")
    assert hub._encoders == {} and hub.models == {}  # forgotten with its last camera
    hub.close()
    with pytest.raises(InputError, match="runtime must be torch or onnx"):
        CameraHub(runtime="tensorrt")
