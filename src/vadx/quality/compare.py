"""Models side by side by how right their explanations are (``vadx compare --ground-truth``).

The reference paper chose its GRU width and MLP depth by looking at explanations. This puts
that choice on numbers: each model is scored by :func:`~vadx.quality.xai_eval` with its
interventions on the same ``vadx synth`` clips, and one table says, per model, what its
decisions rest on (removing the anomaly flips them; removing another actor alone does) and how
each method's maps and frame curves agree with the interventions. Each model's own xai-eval
folder is kept beside the table.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from vadx.catalogue import DEFAULT_METHODS, DEFAULT_TEMPORAL
from vadx.errors import InputError
from vadx.files import staged_folder, write_json
from vadx.models.crnn import CRNN
from vadx.quality.metrics import METRICS
from vadx.quality.xai_eval import Reliance, xai_eval

#: the columns of the table, per spatial method and per temporal estimator
SPATIAL_COLUMNS = (
    "actor_rank_correlation",
    "decisive_actor_first",
    "pointing_game_cells",
    "pointing_game_evidence",
)
TEMPORAL_COLUMNS = ("temporal_rank_correlation", "temporal_truth_auroc")


@dataclass(frozen=True, slots=True)
class ModelRow:
    """One model of the comparison: its name, its xai-eval folder (relative to the output),
    its architecture in words, its model id, the clips scored, what its decisions rest on,
    and each method's mean scores of the table's columns."""

    model: str
    folder: str
    architecture: str
    model_id: str | None
    clips: int
    reliance: Reliance | None
    scores: dict[str, dict[str, float]]


@dataclass(frozen=True, slots=True)
class GroundTruthComparison:
    """:func:`compare_ground_truth`'s result (``dataclasses.asdict`` is
    ``compare-ground-truth.json``)."""

    data: str
    split: str
    methods: list[str]
    temporal: list[str]
    models: list[ModelRow]


def describe(model: CRNN) -> str:
    """A model's architecture in a few words: backbone, RNN, head, clip."""
    config = model.config
    width = config.backbone_args.get("width") if config.backbone_args else None
    backbone = config.backbone + (f" ×{width:g}" if width else "")
    head = "-".join(str(h) for h in config.head_hidden) or "none"
    return (
        f"{backbone}, {config.rnn.upper()} {config.rnn_hidden}, head {head}, "
        f"{config.num_frames}×{config.frame_size[0]}px"
    )


def compare_ground_truth(
    models: Mapping[str, CRNN],
    data: str | Path,
    out: str | Path,
    *,
    methods: Sequence[str] = DEFAULT_METHODS[:2],
    temporal: Sequence[str] = DEFAULT_TEMPORAL[:1],
    split: str = "test",
    limit: int | None = None,
    progress: Callable[[str, int, int], None] | None = None,
) -> GroundTruthComparison:
    """Score every model against the interventions on ``data`` (a ``vadx synth`` dataset) and
    write ``compare-ground-truth.json`` and ``.md`` (the table) into ``out``, with each model's
    xai-eval folder under ``out/models/``."""
    if not models:
        raise InputError("compare needs at least one model")
    rows = []
    out = Path(out)
    with staged_folder(out, last="compare-ground-truth.json") as staging:
        for number, (name, model) in enumerate(models.items()):
            document = xai_eval(
                model,
                data,
                staging / "models" / f"{number:02d}",
                split=split,
                methods=methods,
                temporal=temporal,
                limit=limit,
                faithfulness_clips=0,
                sanity_clips=0,
                interventions=True,
                progress=progress,
            )
            summary = document.summary
            scores = {
                method: {
                    metric: summary[method].mean(metric)
                    for metric in (SPATIAL_COLUMNS if method in methods else TEMPORAL_COLUMNS)
                    if method in summary and metric in summary[method]
                }
                for method in (*methods, *temporal)
            }
            rows.append(
                ModelRow(
                    model=name,
                    folder=f"models/{number:02d}",
                    architecture=describe(model),
                    model_id=getattr(getattr(model, "checkpoint", None), "model_id", None),
                    clips=document.clips_scored,
                    reliance=document.reliance,
                    scores=scores,
                )
            )
        table = markdown(rows, methods, temporal)
        (staging / "compare-ground-truth.md").write_text(table, encoding="utf-8")
        result = GroundTruthComparison(
            data=str(data),
            split=split,
            methods=list(methods),
            temporal=list(temporal),
            models=rows,
        )
        write_json(staging / "compare-ground-truth.json", asdict(result))
    return result


def _cell(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


def markdown(rows: list[ModelRow], methods: Sequence[str], temporal: Sequence[str]) -> str:
    """The comparison as a table: one row per model."""
    columns = [(m, c) for m in methods for c in SPATIAL_COLUMNS] + [
        (t, c) for t in temporal for c in TEMPORAL_COLUMNS
    ]
    header = ["model", "architecture", "clips", "anomaly removed flips ↑", "other actor flips ↓"]
    header += [f"{m} {c} {METRICS[c].arrow}" for m, c in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for row in rows:
        reliance = row.reliance
        cells = [
            row.model,
            row.architecture,
            str(row.clips),
            _cell(None if reliance is None else reliance.anomaly_flips),
            _cell(None if reliance is None else reliance.other_actor_flips),
        ]
        cells += [_cell(row.scores.get(m, {}).get(c)) for m, c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
