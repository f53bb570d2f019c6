"""What every explanation-quality metric declares: its category and its direction.

Tables and reports sort and colour themselves from these declarations (Quantus' habit): a
metric whose ``higher_is_better`` is False is best when lowest (a deletion AUC), and every
score is shown beside its baseline when it has one (a random ordering, the mask's area share).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MetricInfo:
    """A metric's name, category (``faithfulness``, ``localisation``, ``intervention``,
    ``sanity``), direction,
    the name of its baseline score (or ``""``) and a one-line description."""

    name: str
    category: str
    higher_is_better: bool
    baseline: str
    description: str

    @property
    def arrow(self) -> str:
        return "↑" if self.higher_is_better else "↓"


METRICS: dict[str, MetricInfo] = {
    m.name: m
    for m in (
        MetricInfo(
            "pointing_game",
            "localisation",
            True,
            "",
            "share of anomalous frames whose map maximum lies inside the mask",
        ),
        MetricInfo(
            "pointing_game_tolerant",
            "localisation",
            True,
            "",
            "the same, a hit within 15 px of the mask on 224-px frames (scaled: 7.5 px "
            "at 112), the original definition (Zhang et al. 2016)",
        ),
        MetricInfo(
            "pointing_game_cells",
            "localisation",
            True,
            "pointing_game_cells_chance",
            "the pointing game on the map's own cells (a CAM's layer, not the upsampled "
            "display): the peak cell holds anomaly pixels; tied peaks score the share of them "
            "that do",
        ),
        MetricInfo(
            "pointing_game_cells_chance",
            "localisation",
            True,
            "",
            "share of the cells that hold anomaly pixels: what a randomly placed peak scores",
        ),
        MetricInfo(
            "energy_pointing_game",
            "localisation",
            True,
            "mask_area",
            "share of the map's mass inside the mask (anomalous frames)",
        ),
        MetricInfo(
            "mask_area",
            "localisation",
            False,
            "",
            "share of the frame the mask covers: what a uniform map scores",
        ),
        MetricInfo(
            "off_picture_share",
            "localisation",
            False,
            "",
            "share of the map's raw magnitude on letter-box padding, not on the picture "
            "(displayed maps and every other metric leave the padding out)",
        ),
        MetricInfo(
            "mask_iou",
            "localisation",
            True,
            "",
            "IoU of the map above half its frame maximum with the mask",
        ),
        MetricInfo(
            "mask_auroc",
            "localisation",
            True,
            "",
            "ROC-AUC of the map's pixels against the mask (0.5 = chance)",
        ),
        MetricInfo(
            "temporal_auroc",
            "localisation",
            True,
            "",
            "ROC-AUC of frame importance against the per-frame anomaly labels",
        ),
        MetricInfo(
            "actor_rank_correlation",
            "intervention",
            True,
            "",
            "Spearman correlation of each actor's attribution mass with the logit drop when "
            "the actor is removed from the scene (ground truth for this model)",
        ),
        MetricInfo(
            "decisive_actor_first",
            "intervention",
            True,
            "",
            "share of clips whose most-attributed actor belongs to the smallest set of actors "
            "whose removal flips the decision",
        ),
        MetricInfo(
            "pointing_game_evidence",
            "intervention",
            True,
            "pointing_game_cells_chance",
            "the pointing game on the map's cells in the frames where the anomaly is evidence "
            "for the decision: removing it from that frame alone drops the logit by at least "
            "5 % of the clip's largest such drop",
        ),
        MetricInfo(
            "temporal_rank_correlation",
            "intervention",
            True,
            "",
            "Spearman correlation of frame importance with the logit drop when the anomaly is "
            "removed from that frame only",
        ),
        MetricInfo(
            "temporal_truth_auroc",
            "intervention",
            True,
            "",
            "ROC-AUC of frame importance against the frames whose anomaly-removal drops the "
            "logit by at least half the largest drop",
        ),
        MetricInfo(
            "deletion_auc",
            "faithfulness",
            False,
            "deletion_auc_random",
            "target probability as the most important pixels are removed first",
        ),
        MetricInfo(
            "deletion_auc_random", "faithfulness", False, "", "the same with a random pixel order"
        ),
        MetricInfo(
            "insertion_auc",
            "faithfulness",
            True,
            "insertion_auc_random",
            "target probability as the most important pixels are revealed first",
        ),
        MetricInfo(
            "insertion_auc_random", "faithfulness", True, "", "the same with a random pixel order"
        ),
        MetricInfo(
            "temporal_deletion_auc",
            "faithfulness",
            False,
            "temporal_deletion_auc_random",
            "target probability as the most important frames are replaced first",
        ),
        MetricInfo(
            "temporal_deletion_auc_random",
            "faithfulness",
            False,
            "",
            "the same with random frame orders",
        ),
        MetricInfo(
            "temporal_insertion_auc",
            "faithfulness",
            True,
            "temporal_insertion_auc_random",
            "target probability as the most important frames are revealed first",
        ),
        MetricInfo(
            "temporal_insertion_auc_random",
            "faithfulness",
            True,
            "",
            "the same with random frame orders",
        ),
        MetricInfo(
            "randomisation_rank_correlation",
            "sanity",
            False,
            "",
            "Spearman correlation of the maps before and after randomising the whole "
            "model (a method that depends on the model falls toward 0)",
        ),
        MetricInfo(
            "randomisation_ssim",
            "sanity",
            False,
            "",
            "SSIM of the maps before and after randomising the whole model",
        ),
        MetricInfo(
            "random_logit_rank_correlation",
            "sanity",
            False,
            "",
            "Spearman correlation of the maps of the predicted class and of another "
            "class (a class-sensitive method falls toward 0)",
        ),
    )
}
