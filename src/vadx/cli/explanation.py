"""The commands that explain decisions: explain (a clip, windows, or a batch), compare (models
side by side) and xai-eval (the methods scored)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, cast

import typer
from rich.table import Table

from vadx import limits
from vadx.cli.batches import run_as_batch
from vadx.cli.common import (
    METHODS_DEFAULT,
    TEMPORAL_DEFAULT,
    ForceOption,
    ListOption,
    MethodsOption,
    ModelPath,
    StepOption,
    StrideOption,
    TemporalOption,
    VideosArgument,
    ViewOption,
    console,
    err_console,
    explain_settings,
    number,
    progress_bar,
    ranks,
)
from vadx.errors import VadxError
from vadx.files import writable_path
from vadx.settings import WindowMode

StartOption = Annotated[int | None, number("First frame of the clip.", *limits.FRAMES)]
EndOption = Annotated[int | None, number("Last frame of the clip.", *limits.FRAMES)]
TargetOption = Annotated[
    str, typer.Option(help="predicted, anomaly (most likely non-normal class), or a class.")
]
LayerOption = Annotated[
    str | None,
    typer.Option(
        help="Backbone layer of the CAM methods (default: the last conv block; "
        "LayerCAM's: the last stride-8 layer, see vadx backbones)."
    ),
]
WeightingOption = Annotated[str, typer.Option(help="Grad-CAM channel weights: frame or clip.")]
NormalisationOption = Annotated[
    str, typer.Option(help="Display maps scaled per clip (default), per frame, or none.")
]
ColormapOption = Annotated[str, typer.Option(help="jet, turbo, inferno, magma, viridis, hot.")]
OpacityOption = Annotated[float, number("Heat-map opacity.", 0, 1, kind=float)]


def explain_command(
    model: ModelPath,
    videos: VideosArgument = None,
    out: Annotated[Path, typer.Option("--out", help="Where to write the explanation.")] = ...,  # type: ignore[assignment]
    list_file: ListOption = None,
    force: ForceOption = False,
    start: StartOption = None,
    end: EndOption = None,
    window: Annotated[
        int | None, number("Explain this sliding window only.", *limits.FRAMES)
    ] = None,
    windows: Annotated[
        str,
        typer.Option(
            help="one (the --start/--end span, default the whole video), all "
            "(every sliding window) or flagged (the windows detection flags)."
        ),
    ] = "one",
    methods: MethodsOption = METHODS_DEFAULT,
    temporal: TemporalOption = TEMPORAL_DEFAULT,
    target: TargetOption = "predicted",
    layer: LayerOption = None,
    weighting: WeightingOption = "frame",
    normalisation: NormalisationOption = "clip",
    view: ViewOption = "heatmap",
    colormap: ColormapOption = "jet",
    opacity: OpacityOption = 0.5,
    stride: StrideOption = None,
    step: StepOption = None,
    timeline: Annotated[
        bool, typer.Option(help="Detect over the whole video for the report's timeline.")
    ] = True,
    quality: Annotated[
        bool, typer.Option(help="Score the maps (deletion/insertion vs random) in the report.")
    ] = False,
    trust: Annotated[
        bool,
        typer.Option(
            help="Give every map a trust verdict (trustworthy/weak/contradictory, with reasons) "
            "in the report and manifest; about 3x the explanation's time."
        ),
    ] = False,
    frames: Annotated[
        bool,
        typer.Option(
            "--frames",
            help="Also write every frame as a PNG, per method (frames/METHOD/NNNNNN.png).",
        ),
    ] = False,
    mp4: Annotated[bool, typer.Option("--mp4", help="Also write METHOD.mp4.")] = False,
    gif: Annotated[bool, typer.Option("--gif", help="Also write METHOD.gif.")] = False,
    sheets: Annotated[
        bool,
        typer.Option(
            "--sheets", help="Also write contact sheets and the methods/views/strip figures (PNG)."
        ),
    ] = False,
    everything: Annotated[
        bool, typer.Option("--all", help="All of --frames, --mp4, --gif and --sheets.")
    ] = False,
    detection: Annotated[
        Path | None,
        typer.Option(
            "--detection",
            help="The --out folder of an earlier `vadx detect` of this video with "
            "this model: its scores make the report's timeline and --windows, instead of detecting "
            "the whole video again.",
        ),
    ] = None,
) -> None:
    """Explain a clip (or windows) of a video into report.html (every method, view and frame,
    drawn in the browser) and the audit record; rendered pictures on request.

    With --windows flagged, several videos, folders of videos or --list make a batch (as detect's).
    """
    from vadx.batch import ExplainJob, is_batch
    from vadx.detect import DetectConfig
    from vadx.detect.files import read_detection
    from vadx.explain.targets import check_target
    from vadx.explanations.video import explain_video
    from vadx.models import load_model

    asked = {"frames": frames, "mp4": mp4, "gif": gif, "sheets": sheets}
    exports = tuple(name for name, wanted in asked.items() if wanted or everything)
    settings = explain_settings(
        methods,
        temporal,
        target,
        layer=layer,
        weighting=weighting,
        normalisation=normalisation,
        view=view,
        colormap=colormap,
        opacity=opacity,
        timeline=timeline,
        quality=quality,
        trust=trust,
        exports=exports,
    )
    writable_path(out, "--out")
    from vadx.normality import is_normality

    if is_normality(model):  # a camera's normal: its own maps, no method to run
        _explain_unusual(model, videos, list_file, out, start, end, settings)
        return
    if is_batch(videos or [], list_file):
        if windows != "flagged" or window is not None or start is not None or end is not None:
            raise VadxError(
                "a batch explains the windows detection flags in each video: add --windows "
                "flagged (--start/--end/--window choose a clip of one video)"
            )
        if detection is not None:
            raise VadxError("--detection reuses the detection of one video; a batch detects each")
        job = ExplainJob(settings, DetectConfig(stride=stride, step=step))
        run_as_batch(
            model,
            videos,
            list_file,
            out,
            job,
            force,
            check=lambda loaded: check_target(loaded, settings.target),
        )
        return
    video = videos[0]  # type: ignore[index]
    loaded = load_model(model)
    check_target(loaded, settings.target)
    earlier = None if detection is None else read_detection(detection, loaded, video)
    with progress_bar("explaining") as advance:
        summary = explain_video(
            loaded,
            video,
            out,
            settings,
            start=start,
            end=end,
            # --window chooses the clip, --windows is not read then; the library checks the mode
            windows=cast(WindowMode, windows if window is None else "one"),
            window=window,
            detect_config=DetectConfig(stride=stride, step=step),
            progress=lambda stage, d, t: advance(d, t, stage),
            detection=earlier,
        )
    if not summary.clips:
        console.print(f"{summary.note or 'nothing explained'}; wrote {out}/summary.json")
        return
    table = Table("frames", "predicted", "target", "domain score", "folder", title="explained")
    for clip in summary.clips:
        score = clip.domain.get("score")
        familiar = "-" if score is None else f"{score:.2f}"
        table.add_row(
            f"{clip.frames[0]}–{clip.frames[-1]}",
            f"{clip.predicted} {clip.probability:.0%}",
            clip.target,
            familiar,
            Path(clip.folder).name,
        )
    console.print(table)
    for clip in summary.clips:
        console.print(f"report: {clip.report}", soft_wrap=True)
    _say_clip_domain(summary.clips, loaded)


def _say_clip_domain(clips: list, model) -> None:
    """Warn, on stderr, about explained clips outside the model's domain (or unchecked)."""
    from vadx.detect.domain import missing_note

    if not all(clip.domain.get("checked") for clip in clips):
        err_console.print(f"note: {missing_note(model)}", soft_wrap=True)
        return
    outside = [clip for clip in clips if clip.domain["verdict"] == "outside"]
    if outside:
        err_console.print(
            f"[bold yellow]warning:[/] {len(outside)} of {len(clips)} explained clip(s) are "
            "outside the model's training domain (domain score > 1): their predictions and maps "
            "are not reliable",
            soft_wrap=True,
        )


def compare_command(
    models_and_video: Annotated[
        list[Path],
        typer.Argument(
            help="Two or more checkpoint directories, then the video (with --ground-truth: "
            "one or more checkpoints, no video)."
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="Where to write the comparison.")],
    start: StartOption = None,
    end: EndOption = None,
    method: Annotated[str, typer.Option(help="The spatial method shown.")] = "layercam",
    temporal: TemporalOption = "frame_shapley",
    target: TargetOption = "predicted",
    layer: LayerOption = None,
    view: ViewOption = "heatmap",
    colormap: ColormapOption = "jet",
    opacity: OpacityOption = 0.5,
    ground_truth: Annotated[
        Path | None,
        typer.Option(
            "--ground-truth",
            help="A vadx synth dataset: instead of a video, score every model's explanations "
            "against interventions on its test clips, in one table (no VIDEO then; --method "
            "may list several methods, --temporal several estimators).",
        ),
    ] = None,
    limit: Annotated[
        int | None,
        number("With --ground-truth: score at most this many clips.", 1, limits.FRAMES[1]),
    ] = None,
) -> None:
    """The same clip explained by several models side by side, with their predictions; or,
    with --ground-truth, the models' explanations scored against interventions."""
    from vadx.explain.targets import check_target
    from vadx.explanations.video import compare_models, model_names
    from vadx.models import load_model
    from vadx.video import probe as probe_video

    if ground_truth is not None:
        _compare_ground_truth(models_and_video, ground_truth, out, method, temporal, limit)
        return
    if len(models_and_video) < 3:
        raise VadxError("compare takes at least two models and a video: MODEL_A MODEL_B VIDEO")
    *paths, video = models_and_video
    names = model_names(paths)
    settings = explain_settings(
        method,
        temporal,
        target,
        layer=layer,
        view=view,
        colormap=colormap,
        opacity=opacity,
        timeline=False,
    )
    writable_path(out, "--out")
    probe_video(video)  # a missing or unreadable video before the models load
    loaded = {n: load_model(p) for n, p in zip(names, paths, strict=True)}
    for model in loaded.values():
        check_target(model, settings.target)
    summary = compare_models(loaded, video, out, settings, start, end)
    table = Table("model", "predicted", "target", title=f"{summary.method} on {video}")
    for entry in summary.models:
        table.add_row(entry.model, f"{entry.predicted} {entry.probability:.0%}", entry.target)
    console.print(table)
    console.print(f"wrote {out}/compare.png, compare.json")


def _compare_ground_truth(
    paths: list[Path], data: Path, out: Path, method: str, temporal: str, limit: int | None
) -> None:
    """``vadx compare MODEL… --ground-truth DATA``: the table of vadx.quality.compare."""
    from vadx.explanations.video import model_names
    from vadx.models import load_model
    from vadx.quality.compare import compare_ground_truth

    settings = explain_settings(method, temporal)  # the names, checked
    writable_path(out, "--out")
    names = model_names(paths)
    loaded = {n: load_model(p) for n, p in zip(names, paths, strict=True)}
    with progress_bar("scoring") as advance:
        result = compare_ground_truth(
            loaded,
            data,
            out,
            methods=settings.methods,
            temporal=settings.temporal,
            limit=limit,
            progress=lambda _, d, t: advance(d, t),
        )
    console.print((out / "compare-ground-truth.md").read_text(encoding="utf-8"), markup=False)
    clips = sum(row.clips for row in result.models)
    console.print(f"{clips} clips scored; wrote {out}/compare-ground-truth.md, .json, models/")


def xai_eval_command(
    model: ModelPath,
    data: Annotated[Path, typer.Argument(help="A dataset with ground-truth masks (vadx synth).")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the table and plot.")],
    split: Annotated[str, typer.Option(help="Which split to score.")] = "test",
    methods: MethodsOption = METHODS_DEFAULT,
    temporal: TemporalOption = TEMPORAL_DEFAULT,
    layer: LayerOption = None,
    limit: Annotated[
        int | None, number("Score at most this many clips.", 1, limits.FRAMES[1])
    ] = None,
    faithfulness_clips: Annotated[
        int, number("Clips that also get deletion/insertion curves (costly).", 0, 10_000)
    ] = 8,
    sanity_clips: Annotated[
        int, number("Clips that also get the randomisation checks (costly).", 0, 10_000)
    ] = 2,
    steps: Annotated[int, number("Steps of the deletion/insertion curves.", 1, 1000)] = 10,
    interventions: Annotated[
        bool | None,
        typer.Option(
            "--interventions/--no-interventions",
            help="Score against the ground truth of interventions: each clip drawn again "
            "without each actor (needs a vadx synth dataset; default: whenever DATA is one).",
        ),
    ] = None,
    max_set: Annotated[
        int, number("Largest set of actors searched for one that flips a decision.", 1, 8)
    ] = 2,
) -> None:
    """Score explanation methods on a dataset: faithfulness, localisation, sanity checks and,
    on synthetic scenes, ground truth from interventions on the scene."""
    from vadx.models import load_model
    from vadx.quality import xai_eval

    settings = explain_settings(methods, temporal, layer=layer)  # the names, checked
    writable_path(out, "--out")
    loaded = load_model(model)
    with ranks() as rank, progress_bar("scoring") as advance:
        document = xai_eval(
            loaded,
            data,
            out,
            split=split,
            methods=settings.methods,
            temporal=settings.temporal,
            layer=layer,
            limit=limit,
            faithfulness_clips=faithfulness_clips,
            sanity_clips=sanity_clips,
            steps=steps,
            interventions=interventions,
            max_set=max_set,
            progress=lambda _, d, t: advance(d, t),
        )
    if rank != 0:  # under torchrun: rank 0 writes and tells
        return
    console.print((out / "xai-eval.md").read_text(encoding="utf-8"), markup=False)
    console.print(
        f"{document.clips_scored} clips scored; wrote {out}/xai-eval.json, "
        "xai-eval.md, xai-eval.png"
    )


def _explain_unusual(model, videos, list_file, out, start, end, settings) -> None:
    """``vadx explain CAMERA_MODEL VIDEO``: the report of the normality model's own maps."""
    from vadx.batch import is_batch
    from vadx.explanations.unusual import explain_unusual
    from vadx.normality import load_normality

    if is_batch(videos or [], list_file):
        raise VadxError(
            "a normality model's maps of many videos: vadx detect MODEL ARCHIVE --out DIR "
            "draws them (unusual.mp4 per video); vadx explain takes one video"
        )
    loaded = load_normality(model)
    with progress_bar("mapping") as advance:
        done = explain_unusual(
            loaded,
            videos[0],
            out,
            start=start,
            end=end,
            settings=settings,
            progress=lambda stage, d, t: advance(d, t, stage),
        )
    console.print(
        f"frames {done.frames[0]}–{done.frames[1]}: most unusual frame {done.peak_frame} "
        f"(score {done.peak_score:.2f} × the threshold), {done.events} event(s) in the video; "
        f"wrote {out}/{done.report}",
        soft_wrap=True,
    )
