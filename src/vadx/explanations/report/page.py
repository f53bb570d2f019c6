"""The audit report: one self-contained ``report.html`` per explained clip.

Everything is embedded (images as data URIs, the MP4 as a data URI, charts as inline SVG, a
few lines of plain JavaScript), so the page opens offline and can be attached to an incident
file as it is. It shows the prediction and class probabilities, the anomaly-score timeline of
the whole video with the clip's span, the clip with a method switcher, a view switcher (heat
map, the reference's contour, multi-level contours), an opacity control and a frame scrubber,
the temporal-importance chart with each estimator's name, the explanation-quality scores when
they were computed, and the audit block (model id and hash, input hash, time, settings,
versions).
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import jinja2
import numpy as np

from vadx.explain import METHODS
from vadx.files import atomic_path
from vadx.render.overlay import CONTOUR_COLOUR, CONTOUR_LEVELS, VIEWS, colourise, line_width

if TYPE_CHECKING:
    from vadx.detect import Detection
    from vadx.explanations.clip import ClipExplanation, ExplainSettings
    from vadx.video.preprocess import Geometry

#: what the report says under a classifier's temporal curves
IMPORTANCE_NOTE = (
    "Each curve is divided by its largest magnitude. Frame Shapley (each segment's share of "
    "the logit, against black frames) credits evidence that several frames carry; frame "
    "occlusion (the logit drop without that one frame) misses it; gradient curves fade "
    "toward early frames in recurrent models."
)
#: widest picture in the report's player (frames are scaled down to it)
PLAYER_WIDTH = 480
JPEG_QUALITY = 85
TEMPLATE = Path(__file__).with_name("report.html.j2")
#: the viewer that draws every view in the browser (inlined in the report; the review page's too)
VIEWER = Path(__file__).with_name("viewer.js")


def data_uri(image: np.ndarray, kind: str = "jpeg") -> str:
    """An RGB (or grey) image as a ``data:`` URI (JPEG for photos, PNG for figures and maps)."""
    if image.ndim == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    params = [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if kind == "jpeg" else []
    ok, encoded = cv2.imencode(f".{'jpg' if kind == 'jpeg' else 'png'}", image, params)
    assert ok
    return f"data:image/{kind};base64,{base64.b64encode(encoded.tobytes()).decode()}"


def display_size(frame: np.ndarray) -> tuple[int, int]:
    """``(height, width)`` of ``frame`` in the report's player: at most PLAYER_WIDTH wide."""
    height, width = frame.shape[:2]
    if width <= PLAYER_WIDTH:
        return height, width
    return round(height * PLAYER_WIDTH / width), PLAYER_WIDTH


def map_atlas(display: np.ndarray) -> np.ndarray:
    """Display maps ``(T, H, W)`` in [0, 1] → one 8-bit grey image ``(T·H, W)``, frame under
    frame: how the report carries a method's maps (the player draws every view from it)."""
    values = np.nan_to_num(np.asarray(display, np.float32), nan=0.0).clip(0, 1)
    return np.round(values * 255).astype(np.uint8).reshape(-1, values.shape[-1])


def player_payload(
    source_frames: Any,
    numbers: Any,
    fps: float,
    geometry: Geometry,
    methods: Mapping[str, tuple[str, np.ndarray]],
    settings: ExplainSettings,
) -> dict[str, Any]:
    """What the report's player draws from (the JSON inside report.html): each frame once
    (JPEG at display size), each method's raw display maps (8-bit, at the model's input
    size: ``methods`` gives each one's label and maps ``(T, H, W)`` in [0, 1]) with where the
    source frame lies in them (``geometry``), and the colour table; heat map, contour and
    contours are drawn in the browser for the selected method, view, opacity and frame."""
    height, width = display_size(source_frames[0])
    frames = [cv2.resize(f, (width, height), interpolation=cv2.INTER_AREA) for f in source_frames]
    g = geometry
    box = [g.top, g.left, round(g.source_size[0] * g.scale_y), round(g.source_size[1] * g.scale_x)]
    lut = colourise(np.arange(256, dtype=np.float32)[None] / 255, settings.colormap)[0]
    return {
        "frames": [data_uri(f) for f in frames],
        "size": [height, width],
        "map_size": list(g.size),
        "box": box,  # top, left, height, width of the source frame in the maps
        "numbers": [int(i) for i in numbers],
        "methods": {
            name: {"label": label, "maps": data_uri(map_atlas(display), "png")}
            for name, (label, display) in methods.items()
        },
        "lut": lut.ravel().tolist(),
        "levels": list(CONTOUR_LEVELS),
        "contour": CONTOUR_COLOUR,
        "line": line_width(frames[0]),
        "view": settings.view,
        "opacity": settings.opacity,
        "fps": fps,
    }


def importance_svg(
    explained: ClipExplanation, width: int = 640, height: int = 170
) -> tuple[str, list[tuple[str, str]]]:
    """Inline SVG: one polyline per temporal estimator (each ÷ its largest magnitude)."""
    curves = []
    for f in explained.explanation.temporal.values():
        scores = np.asarray(f.scores[0], np.float64)
        curves.append((f.display_name, scores / (np.abs(scores).max() or 1.0)))
    return curves_svg(curves, explained.indices, width, height)


def curves_svg(
    curves: list[tuple[str, np.ndarray]],
    numbers: Any,
    width: int = 640,
    height: int = 170,
    bottom: float = -1.0,
    marks: tuple[str, str] = ("+1", "−1"),
) -> tuple[str, list[tuple[str, str]]]:
    """Inline SVG of named curves over a clip's frames (values from ``bottom`` to 1, a line
    at 0 and a marker the player moves), and its legend."""
    steps = len(numbers)
    pad_l, pad_r, pad_t, pad_b = 34, 10, 10, 22
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(t: float) -> float:
        return pad_l + (t + 0.5) * inner_w / steps

    def y(v: float) -> float:
        return pad_t + (1 - (v - bottom) / (1 - bottom)) * inner_h

    colours = ["#d62728", "#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e"]
    parts = [
        f'<svg id="importance" viewBox="0 0 {width} {height}" width="100%" '
        f'role="img" aria-label="temporal importance">',
        f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(0):.1f}" y2="{y(0):.1f}" '
        'stroke="#999" stroke-width="0.6"/>',
        f'<line id="marker" x1="{x(0):.1f}" x2="{x(0):.1f}" y1="{pad_t}" '
        f'y2="{pad_t + inner_h}" stroke="#444" stroke-dasharray="3 3"/>',
    ]
    legend = []
    for k, (name, values) in enumerate(curves):
        points = " ".join(f"{x(t):.1f},{y(v):.1f}" for t, v in enumerate(values))
        colour = colours[k % len(colours)]
        parts.append(
            f'<polyline fill="none" stroke="{colour}" stroke-width="1.8" '
            f'points="{points}"><title>{name}</title></polyline>'
        )
        legend.append((name, colour))
    for t in range(0, steps, max(1, steps // 10)):
        parts.append(
            f'<text x="{x(t):.1f}" y="{height - 6}" font-size="10" '
            f'text-anchor="middle">{numbers[t]}</text>'
        )
    parts += [
        f'<text x="4" y="{y(1) + 4:.1f}" font-size="10">{marks[0]}</text>',
        f'<text x="4" y="{y(bottom):.1f}" font-size="10">{marks[1]}</text>',
        "</svg>",
    ]
    return "\n".join(parts), legend


def timeline_svg(
    detection: Detection, span: tuple[int, int], width: int = 640, height: int = 120
) -> str:
    """Inline SVG of the smoothed anomaly score over the whole video, events and the clip's
    span shaded."""
    score = np.asarray(detection.smoothed_score, np.float64)
    frames = len(score)
    pad_l, pad_r, pad_t, pad_b = 34, 10, 8, 20
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(t: float) -> float:
        return pad_l + t * inner_w / max(frames - 1, 1)

    def y(v: float) -> float:
        return pad_t + (1 - v) * inner_h

    step = max(1, frames // 800)
    points = " ".join(f"{x(t):.1f},{y(score[t]):.1f}" for t in range(0, frames, step))
    parts = [
        f'<svg id="timeline" viewBox="0 0 {width} {height}" width="100%" role="img" '
        f'data-frames="{frames}" data-left="{pad_l}" data-right="{pad_r}" '
        'aria-label="anomaly score over the video; click a frame of the explained clip">'
    ]
    outside = detection.outside_domain
    starts = np.flatnonzero(outside & ~np.r_[False, outside[:-1]])
    ends = np.flatnonzero(outside & ~np.r_[outside[1:], False])
    for first, last in zip(starts, ends, strict=True):
        parts.append(
            f'<rect class="outside" x="{x(first):.1f}" y="{pad_t}" '
            f'width="{max(1.0, x(last) - x(first)):.1f}" height="{inner_h}" '
            f'fill="#888" opacity="0.25"><title>frames {first}–{last}: outside the '
            "model's domain</title></rect>"
        )
    for event in detection.events:
        parts.append(
            f'<rect x="{x(event.start_frame):.1f}" y="{pad_t}" '
            f'width="{max(1.0, x(event.end_frame) - x(event.start_frame)):.1f}" '
            f'height="{inner_h}" fill="#f4a3a3" opacity="0.55"><title>{event.class_name}'
            f" {event.start_frame}–{event.end_frame}, peak {event.peak_probability:.0%}"
            "</title></rect>"
        )
    span_width = max(1.0, x(span[1]) - x(span[0]))
    parts.append(
        f'<rect x="{x(span[0]):.1f}" y="{pad_t}" width="{span_width:.1f}" '
        f'height="{inner_h}" fill="none" stroke="#1f4fb4" stroke-width="2">'
        f"<title>explained clip {span[0]}–{span[1]}</title></rect>"
    )
    on = detection.settings.on
    parts += [
        f'<line x1="{pad_l}" x2="{width - pad_r}" y1="{y(on):.1f}" y2="{y(on):.1f}" '
        'stroke="#c00" stroke-dasharray="4 3" stroke-width="0.8"/>',
        f'<polyline fill="none" stroke="#222" stroke-width="1.5" points="{points}"/>',
        f'<text x="4" y="{y(1) + 8:.1f}" font-size="10">1</text>',
        f'<text x="4" y="{y(0):.1f}" font-size="10">0</text>',
        f'<text x="{pad_l}" y="{height - 4}" font-size="10">frame 0</text>',
        f'<text x="{width - pad_r}" y="{height - 4}" font-size="10" text-anchor="end">'
        f"{frames - 1}</text>",
        "</svg>",
    ]
    return "\n".join(parts)


def domain_banner(check: Mapping[str, Any], detection: Detection | None) -> dict | None:
    """The warning the report opens with when the footage is outside the model's domain (the
    clip's own check, or most of the video's windows), or a note when it was not checked."""
    from vadx.models.domain_stats import verdict_line

    if not check.get("checked"):
        return {"level": "note", "text": "Domain not checked: " + check.get("note", "")}
    lines = []
    if check["verdict"] == "outside":
        lines.append(
            f"This clip is outside the model's training domain (domain score "
            f"{check['score']:.2f}; 1 = threshold): the scene is unlike anything the "
            "model was trained on, so its prediction and these maps are not reliable."
        )
    video = verdict_line(detection.domain) if detection is not None else None
    if video:
        lines.append(f"Over the whole video, {video}.")
    return {"level": "warning", "text": " ".join(lines)} if lines else None


def domain_row(check: Mapping[str, Any]) -> str:
    if not check.get("checked"):
        return "not checked: the model has no domain statistics (vadx calibrate)"
    return f"domain score {check['score']:.2f} (1 = threshold): {check['verdict']}"


def off_picture_row(e: Any) -> str:
    shares = {a.display_name: a.off_picture for a in e.maps.values() if a.off_picture is not None}
    if not shares:
        return "not measured"
    listed = ", ".join(f"{name} {float(share[0]):.1%}" for name, share in shares.items())
    return f"{listed} (shown maps exclude the padding)"


def write_report(
    path: Path,
    explained: ClipExplanation,
    settings: ExplainSettings,
    audit: Mapping[str, Any],
    detection: Detection | None = None,
    quality: Mapping[str, Mapping[str, float]] | None = None,
) -> Path:
    """Write the self-contained report of ``clip`` to ``path`` (module doc)."""
    e = explained.explanation
    checkpoint = audit.get("model_checkpoint") or {}
    importance, legend = importance_svg(explained)
    name, probability = explained.predicted
    manifest = {**e.manifest(), **audit}
    return render_report(
        path,
        title=f"{name.capitalize()}: {probability:.0%} — {Path(audit['source']['path']).name}",
        predicted=name,
        probability=probability,
        probabilities=sorted(
            zip(e.class_names, e.probabilities[0].tolist(), strict=True), key=lambda p: -p[1]
        ),
        target=e.target_names[0],
        frames=(int(explained.indices[0]), int(explained.indices[-1])),
        fps=audit["source"]["fps"],
        timeline=timeline_svg(detection, (int(explained.indices[0]), int(explained.indices[-1])))
        if detection is not None
        else None,
        importance=importance,
        importance_note=IMPORTANCE_NOTE,
        legend=legend,
        player=json.dumps(
            player_payload(
                explained.frames,
                explained.indices,
                explained.fps,
                explained.geometry,
                {name: (a.display_name, a.display[0]) for name, a in e.maps.items()},
                settings,
            )
        ),
        methods=[
            (m, a.display_name, METHODS[m].description if m in METHODS else "")
            for m, a in e.maps.items()
        ],
        view=settings.view,
        quality=quality,
        trust=audit.get("trust"),
        domain=domain_banner(explained.domain, detection),
        manifest=json.dumps(manifest, indent=1),
        audit_rows=[
            ("Model", checkpoint.get("id", "not from a checkpoint")),
            ("Model weights sha256", checkpoint.get("weights_sha256", "—")),
            ("Input video", audit["source"]["path"]),
            ("Input sha256", audit["source"]["sha256"]),
            ("Clip frames", ", ".join(str(i) for i in audit["clip_frames"])),
            ("Clip tensor sha256", e.clip_sha256),
            ("Explained", e.created),
            ("Target", f"{e.target} → {e.target_names[0]}"),
            ("Normalisation", e.normalisation),
            ("Domain check", domain_row(explained.domain)),
            (
                "Frame fit",
                f"{audit['preprocessing']['fit']}: the picture fills "
                f"{audit['preprocessing']['picture_share']:.0%} of the model's frame",
            ),
            ("Raw attribution off the picture", off_picture_row(e)),
            ("Versions", ", ".join(f"{k} {v}" for k, v in manifest["versions"].items())),
        ],
    )


def render_report(path: Path, **fields: Any) -> Path:
    """Render ``report.html`` (the template's ``fields``; the viewer and the views are the
    same for every report) to ``path``, atomically."""
    environment = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    page = environment.from_string(TEMPLATE.read_text(encoding="utf-8")).render(
        viewer=VIEWER.read_text(encoding="utf-8"), views=VIEWS, **fields
    )
    with atomic_path(path) as tmp:
        tmp.write_text(page, encoding="utf-8")
    return path
