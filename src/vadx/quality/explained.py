"""The faithfulness of one explained clip, as ``vadx explain --quality`` records it in the
clip's manifest and report (its trust verdicts, ``--trust``, are :mod:`vadx.quality.trust`'s).

It reads only the explanation and the picture's pixels: what the clip layer explained flows
here, and the scores flow back to the files, never the other way.
"""

from __future__ import annotations

import numpy as np
import torch

from vadx.explain import Explanation
from vadx.models.crnn import CRNN
from vadx.quality.faithfulness import spatial_curves, temporal_curves
from vadx.quality.xai_eval import curve_scores

#: each map's or frame curve's scores by name (``deletion_auc``, ``insertion_auc_random``, …)
QualityScores = dict[str, dict[str, float]]


def clip_quality(model: CRNN, explanation: Explanation, picture: np.ndarray) -> QualityScores:
    """Deletion/insertion AUCs of each map and frame-importance curve of ``explanation`` (one
    clip), each with its random-order baseline (lower deletion and higher insertion than random
    = faithful); ``picture`` ``(H, W)``: the pixels that show the video, not padding."""
    e = explanation
    tensor = torch.from_numpy(np.array(e.clip)).to(model.device)
    target = int(e.targets[0]) if e.targets[0] >= 0 else int(e.probabilities[0].argmax())
    scores = {
        name: curve_scores(spatial_curves(model, tensor, a.display[0], target, picture=picture))
        for name, a in e.maps.items()
    }
    scores.update(
        {
            name: curve_scores(temporal_curves(model, tensor, f.scores[0], target), "temporal_")
            for name, f in e.temporal.items()
        }
    )
    return scores
