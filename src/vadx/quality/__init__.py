"""Explanation quality: faithfulness, localisation against ground truth, sanity checks."""

from vadx.quality.faithfulness import auc, spatial_curves, temporal_curves
from vadx.quality.localisation import (
    cell_pointing_game,
    energy_pointing_game,
    mask_area,
    mask_auroc,
    mask_iou,
    pointing_game,
    pointing_tolerance,
    temporal_auroc,
)
from vadx.quality.metrics import METRICS, MetricInfo
from vadx.quality.sanity import cascading_randomisation, rank_correlation, ssim
from vadx.quality.xai_eval import localisation_scores, xai_eval

__all__ = [
    "METRICS",
    "MetricInfo",
    "auc",
    "cascading_randomisation",
    "cell_pointing_game",
    "energy_pointing_game",
    "localisation_scores",
    "mask_area",
    "mask_auroc",
    "mask_iou",
    "pointing_game",
    "pointing_tolerance",
    "rank_correlation",
    "spatial_curves",
    "ssim",
    "temporal_auroc",
    "temporal_curves",
    "xai_eval",
]
