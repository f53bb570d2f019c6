"""Seeing explanations: overlays, contour views, strips, grids, video export and the report."""

from vadx.render.overlay import (
    COLORMAPS,
    VIEWS,
    class_label,
    colourise,
    contour,
    contours,
    heatmap,
    label_frame,
    render,
)

__all__ = [
    "COLORMAPS",
    "VIEWS",
    "class_label",
    "colourise",
    "contour",
    "contours",
    "heatmap",
    "label_frame",
    "render",
]
