"""The names of vadx's explanation methods and their defaults, without importing them (or
torch): one place that the engine's registries, the CLI's options, ``vadx serve`` and the page
all read. A test holds the registries of :mod:`vadx.explain` to these names; the enumerated
settings of the explanations (``Weighting``, ``Normalisation``) are defined here once too.
"""

from typing import Literal

#: spatial methods (maps in each frame), in the registry's order
METHOD_NAMES = (
    "saliency",
    "gradcam",
    "activation",
    "gradcam_plus_plus",
    "layercam",
    "gradient_x_input",
    "smoothgrad",
    "integrated_gradients",
    "guided_backprop",
    "guided_gradcam",
    "occlusion",
)
#: temporal estimators (which frames), in the registry's order
TEMPORAL_NAMES = ("frame_occlusion", "gradient_norm", "gradcam_mass", "frame_shapley")
#: LayerCAM at the last stride-8 layer (the best localised and most faithful map on the demo
#: model: docs/quality.md), then the reference's three methods
DEFAULT_METHODS = ("layercam", "gradcam", "saliency", "activation")
#: Shapley values of segments first (the default: ``vadx.explain.temporal``), single-frame
#: occlusion, then the two that come free with the shared pass
DEFAULT_TEMPORAL = ("frame_shapley", "frame_occlusion", "gradient_norm", "gradcam_mass")

#: how Grad-CAM weighs a layer's channels: by each frame's own gradient, or by the clip's
Weighting = Literal["frame", "clip"]
WEIGHTINGS: tuple[Weighting, ...] = ("frame", "clip")
#: how display maps are scaled to [0, 1]: over the whole clip, per frame, or not at all
Normalisation = Literal["clip", "frame", "none"]
NORMALISATIONS: tuple[Normalisation, ...] = ("clip", "frame", "none")
#: what a method explains: where in each frame (maps) or which frames (scores)
MethodKind = Literal["spatial", "temporal"]
METHOD_KINDS: tuple[MethodKind, ...] = ("spatial", "temporal")
