"""A job refused at submission when it cannot succeed on its video with its model: bad
detection settings, a window longer than the video, an explanation's frames, target or method
names — each worded for the API's client."""

from __future__ import annotations

from vadx.detect import check_domain_mode, window_spacing
from vadx.errors import VadxError
from vadx.explain.targets import check_target as check_model_target
from vadx.explanations.clip import ExplainSettings, parse_target
from vadx.models.crnn import CRNN
from vadx.normality import NormalityModel
from vadx.serve.schema import JobParams, Video
from vadx.serve.served import ServedModel


def check_job(params: JobParams, video: Video, model: ServedModel) -> None:
    """Refuse, before it runs, a job that cannot succeed on ``video`` with ``model``: bad
    detection settings, a window longer than the video, an explanation's frames, target or
    method names, an explanation of a normality model. Raises :class:`VadxError` worded for
    the API's client."""
    config = params.detect_config()
    if isinstance(model, NormalityModel):
        if params.kind == "explain":
            raise VadxError(
                f"model {params.model!r} is a normality model: its anomaly maps come with its "
                "detection (the detect job's unusual.mp4), not from an explain job"
            )
        return  # frame by frame: any video, any detection settings the schema allows
    check_domain_mode(model, config.domain, show_path=False)
    step, span, _ = window_spacing(model, config)
    frames = video.num_frames
    if frames < span:
        fix = "choose a smaller detect.step" if step > 1 else "upload a longer video"
        raise VadxError(
            f"the video has {frames} frames, fewer than one window of the model "
            f"({model.config.num_frames} frames {step} apart = {span}); {fix}"
        )
    if params.kind == "explain":
        explain_settings(params)
        check_target(params.target, model)
        start = params.start or 0
        end = frames - 1 if params.end is None else params.end
        if not start <= end <= frames - 1:
            raise VadxError(
                f"frames {start}–{end} are not inside the video's {frames} frames "
                f"(0–{frames - 1}); give 0 ≤ start ≤ end ≤ {frames - 1}"
            )
        clip = model.config.num_frames
        if end - start + 1 < clip:
            raise VadxError(
                f"frames {start}–{end} are {end - start + 1}, fewer than the model's clip of "
                f"{clip} frames; give end ≥ start + {clip - 1}"
            )


def explain_settings(params: JobParams) -> ExplainSettings:
    return ExplainSettings(
        methods=tuple(params.methods),
        temporal=tuple(params.temporal),
        target=parse_target(params.target),
        view=params.view,
        trust=params.trust,
        exports=tuple(params.exports),
    )


def check_target(target: str, model: CRNN) -> None:
    """Refuse a target the model cannot explain (:func:`vadx.explain.targets.check_target`),
    worded for the API: ``predicted``, ``anomaly``, one of its classes or a class index."""
    try:
        check_model_target(model, parse_target(target))
    except VadxError:
        names = model.class_names
        raise VadxError(
            f"target must be predicted, anomaly, one of the model's classes "
            f"({', '.join(names)}) or a class index 0–{len(names) - 1}; got {target!r}"
        ) from None
