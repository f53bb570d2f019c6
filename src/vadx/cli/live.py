"""The commands that run on: watch (a live stream, or a file as one) and serve (a web page and
HTTP API)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from vadx import limits
from vadx.cli.common import (
    DETECT,
    MethodsOption,
    ModelPath,
    NormalOption,
    TemporalOption,
    ViewOption,
    console,
    err_console,
    explain_settings,
    load_normal,
    number,
    say_domain,
    with_detection_options,
)
from vadx.errors import VadxError
from vadx.files import writable_path
from vadx.settings import RUNTIMES, DetectConfig

if TYPE_CHECKING:
    from vadx.watch.runner import WatchMetrics
    from vadx.watch.sinks import EventRecord


@with_detection_options
def watch_command(
    model: ModelPath,
    source: Annotated[
        str,
        typer.Argument(
            help="A video file, a webcam index (0), or an rtsp://, http(s):// or tcp:// URL."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write events, alerts, metrics.")],
    normal: NormalOption = None,
    detection: DetectConfig = DETECT,
    queue: Annotated[
        int,
        number(
            "Frames the capture queue holds (a live source drops its oldest beyond).", 1, 100_000
        ),
    ] = 64,
    batch: Annotated[int, number("Most frames per CNN batch.", *limits.BATCH)] = 16,
    pace: Annotated[
        bool, typer.Option(help="Read a file at its frame rate, like a camera.")
    ] = False,
    max_retries: Annotated[
        int | None,
        number("Failed reconnections in a row before giving up (default: never).", 0, 10**9),
    ] = None,
    explain: Annotated[bool, typer.Option(help="Explain each alert's window.")] = True,
    methods: MethodsOption = "layercam",
    temporal: TemporalOption = "frame_shapley",
    view: ViewOption = "contour",
    explain_mp4: Annotated[bool, typer.Option(help="Also write each alert as MP4.")] = False,
    trust: Annotated[
        bool,
        typer.Option(
            help="Give each alert's explanation a trust verdict (trustworthy / weak / "
            "contradictory, docs/trust.md): in its manifest and events.jsonl."
        ),
    ] = False,
    annotate: Annotated[
        Path | None, typer.Option(help="Write annotated frames to this MP4.")
    ] = None,
    mjpeg: Annotated[
        int | None,
        number("Serve the live view (MJPEG) and /metrics on this port.", *limits.PORT),
    ] = None,
    host: Annotated[str, typer.Option(help="Address of the MJPEG server.")] = "127.0.0.1",
    webhook: Annotated[str | None, typer.Option(help="POST each event (JSON) to this URL.")] = None,
    sqlite: Annotated[bool, typer.Option(help="Also keep events in events.sqlite.")] = False,
    metrics_every: Annotated[
        float, number("Seconds between metrics lines.", 0.1, 86_400, kind=float)
    ] = 5.0,
    max_frames: Annotated[
        int | None, number("Stop after this many frames.", 1, limits.FRAMES[1])
    ] = None,
    duration: Annotated[
        float | None, number("Stop after this many seconds.", 0.001, 10**9, kind=float)
    ] = None,
) -> None:
    """Detect and explain anomalies on a live stream (or a file) as they happen.

    Events go to OUT/events.jsonl the moment they start and end (fsynced);
    each alert's window is explained into OUT/alerts/. Stop with Ctrl-C or
    SIGTERM: open events are closed and everything is flushed. With --normal,
    the camera's normal watches the same frames beside the classifier.
    """
    import signal
    import threading
    from dataclasses import replace

    from vadx.detect import check_domain_mode
    from vadx.models import load_model
    from vadx.normality import is_normality, load_normality
    from vadx.watch import WatchConfig, watch

    settings = explain_settings(methods, temporal, view=view, timeline=False, trust=trust)
    config = WatchConfig(
        detect=detection,
        queue_size=queue,
        batch=batch,
        pace=pace,
        max_retries=max_retries,
        explain=explain,
        explain_settings=settings,
        explain_mp4=explain_mp4,
        annotate=annotate,
        mjpeg=None if mjpeg is None else (host, mjpeg),
        webhook=webhook,
        sqlite=sqlite,
        metrics_every=metrics_every,
        max_frames=max_frames,
        duration=duration,
    )
    writable_path(out, "--out")
    if annotate is not None:
        writable_path(annotate, "--annotate", folder=False)
    beside = load_normal(model, normal)
    if is_normality(model):  # the camera's own normal: its maps are the explanation
        loaded = load_normality(model)
        config = replace(config, explain=False)
    else:
        loaded = load_model(model)
        check_domain_mode(loaded, detection.domain)
        if loaded.domain is None:  # before watching: how to add it
            say_domain({"checked": False}, loaded, detection.domain)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())

    def say_alert(alert, record: EventRecord) -> None:
        said = f"{record.class_name} ({record.signal})" if beside else record.class_name
        if record.state == "started":
            flag = " [yellow](outside the model's domain)[/]" if record.out_of_domain else ""
            console.print(
                f"[bold red]ALERT[/] {said} from frame "
                f"{record.start_frame} ({record.started_at}){flag}"
            )
        else:
            console.print(
                f"ended {said}: frames {record.start_frame}–"
                f"{record.end_frame}, peak {record.peak_probability:.0%} "
                f"({record.reason})"
            )

    def say_metrics(metrics: WatchMetrics) -> None:
        m = metrics.live
        err_console.print(
            f"capture {m.capture_fps:.1f} fps · processed {m.processed_fps:.1f} fps · "
            f"latency p50 {_ms(m.latency_ms['p50'])} · queue {m.queue_depth} · "
            f"dropped {m.frames_dropped}"
            + (
                ""
                if m.domain is None
                else f" · outside domain {m.domain.windows_outside}/{m.windows} windows"
            )
        )

    if mjpeg is not None:
        err_console.print(f"live view: http://{host}:{mjpeg}/")
    summary = watch(
        loaded,
        int(source) if source.isdigit() else source,
        out,
        config,
        stop=stop,
        on_alert=say_alert,
        on_metrics=say_metrics,
        normal=beside,
    )
    m = summary.metrics.live
    console.print(
        f"{summary.ended} after {summary.seconds:.1f} s: "
        f"{m.frames_processed} frames, {len(summary.events)} event(s), "
        f"{m.frames_dropped} dropped; wrote {out}/events.jsonl, summary.json",
        soft_wrap=True,
    )
    if summary.source_error is not None:
        raise VadxError(f"the source failed for good: {summary.source_error}")


def serve_command(
    models: Annotated[list[Path], typer.Argument(help="One or more checkpoint directories.")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, number("Port to listen on.", *limits.PORT)] = 8000,
    data_dir: Annotated[Path, typer.Option(help="Where uploads and results live.")] = Path(
        "vadx-data"
    ),
    token: Annotated[
        str | None,
        typer.Option(envvar="VADX_TOKEN", help="Require this API token (or set VADX_TOKEN)."),
    ] = None,
    max_upload_mb: Annotated[
        float, number("Largest upload accepted, MB.", 0.001, 1_000_000, kind=float)
    ] = 200.0,
    workers: Annotated[int, number("Jobs run at the same time.", 1, 64)] = 1,
    max_queue: Annotated[
        int, number("Most jobs queued or running; more get 429 (try later).", 1, 100_000)
    ] = 32,
    allowed_host: Annotated[
        list[str] | None,
        typer.Option(
            help="Another host name clients reach the server by (repeatable); by default "
            "only this machine's names and --host are answered (DNS rebinding).",
        ),
    ] = None,
    cameras: Annotated[
        Path | None,
        typer.Option(
            help="Live cameras to watch, declared in a YAML file (see docs/console.md): one "
            "engine for all, their events in the database and at /api/events.",
            show_default=False,
        ),
    ] = None,
    database: Annotated[
        str | None,
        typer.Option(
            help="The cameras' events and the upload jobs in this database (a SQLAlchemy "
            "URL, e.g. postgresql+psycopg://user@host/vadx; default with --cameras: SQLite in "
            "--data-dir). Without --cameras: a console of uploads only, cameras added later "
            "through the API.",
            show_default=False,
        ),
    ] = None,
    mqtt: Annotated[
        str | None,
        typer.Option(
            help="Publish the cameras' events to this MQTT broker: HOST[:PORT] or "
            "mqtt://[USER[:PASSWORD]@]HOST[:PORT] (topics vadx/…).",
            show_default=False,
        ),
    ] = None,
    keep_days: Annotated[
        float | None,
        number("Delete the cameras' events older than this, days.", 0.001, 36_500, kind=float),
    ] = None,
    keep_gb: Annotated[
        float | None,
        number("Delete the oldest events while their clips take more, GB.", 0.001, 1e6, kind=float),
    ] = None,
    trust: Annotated[
        bool,
        typer.Option(
            help="Give each camera event's explanation a trust verdict (docs/trust.md).",
        ),
    ] = False,
    runtime: Annotated[
        str,
        typer.Option(
            help="Where the cameras' per-frame CNN runs: torch, or onnx (ONNX Runtime on the "
            "CPU, see docs/console.md; needs the onnx extra: pip install vadx\\[onnx]).",
        ),
    ] = "torch",
) -> None:
    """A web page and HTTP API to upload videos, detect, explain and review anomalies.

    Open http://HOST:PORT/ in a browser; the API is documented at /docs.
    Results persist in --data-dir and survive a restart. With --cameras it also watches
    live cameras in one engine.
    """
    import uvicorn

    from vadx.serve import Server, create_app, listening_socket, load_models
    from vadx.serve.guard import Limits, allowed_hosts, uvicorn_config

    if host not in ("127.0.0.1", "localhost", "::1") and token is None:
        err_console.print(
            "warning: serving beyond this machine without --token: anyone who "
            "can reach it can upload and read results"
        )
    writable_path(data_dir, "--data-dir")
    if runtime not in RUNTIMES:
        raise typer.BadParameter(f"--runtime is {' or '.join(RUNTIMES)}, not {runtime!r}")
    console_only = mqtt or keep_days or keep_gb or trust or runtime != "torch"
    if cameras is None and database is None and console_only:
        raise typer.BadParameter(
            "--mqtt, --keep-days, --keep-gb, --trust and --runtime need --cameras (or --database)"
        )
    declared = [] if cameras is None and database is not None else _read_cameras(cameras)
    with listening_socket(host, port) as listening:
        limits = Limits(hosts=allowed_hosts(host, tuple(allowed_host or ())), queue=max_queue)
        server = Server(
            load_models(models), data_dir, token, int(max_upload_mb * 1e6), workers, limits
        )
        if declared is not None:
            server.console = _console(
                server, declared, database, mqtt, keep_days, keep_gb, trust, runtime
            )
        console.print(
            f"vadx serving {', '.join(server.models)} on http://{host}:{port}/ "
            f"(API docs: /docs, data: {data_dir})"
            + (f", {len(declared)} camera(s)" if declared is not None else ""),
            soft_wrap=True,
        )
        config = uvicorn_config(create_app(server), host, port, limits)
        try:
            if server.console is not None:
                server.console.start()
            uvicorn.Server(config).run(sockets=[listening])
        finally:
            if server.console is not None:
                server.console.close()
            server.jobs.close()


def _read_cameras(path: Path | None):
    """The cameras the YAML file declares (None: no console)."""
    if path is None:
        return None
    from vadx.console.cameras import read_cameras

    return read_cameras(path)


def _console(server, declared, database, mqtt, keep_days, keep_gb, trust, runtime):
    """The console of ``vadx serve --cameras``: its models are the served ones when a camera
    names one, else loaded once from the camera's checkpoint path."""
    from vadx.console.mqtt import MqttSettings
    from vadx.console.service import Console, Retention
    from vadx.models import load_model
    from vadx.normality import is_normality, load_normality

    def load(ref: str):
        if ref in server.models:
            return server.models[ref]
        if not Path(ref).exists():
            raise VadxError(
                f"a camera's model {ref!r} is neither a served model "
                f"({', '.join(server.models)}) nor a checkpoint folder"
            )
        return load_normality(ref) if is_normality(ref) else load_model(ref)

    return Console(
        declared,
        server.data / "console",
        database=database,
        mqtt=None if mqtt is None else MqttSettings.parse(mqtt),
        retention=Retention(keep_days, None if keep_gb is None else int(keep_gb * 1e9)),
        trust=trust,
        load=load,
        runtime=runtime,
    )


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"
