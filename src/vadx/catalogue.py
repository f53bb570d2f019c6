"""The names of vadx's explanation methods and their defaults, without importing them (or
torch): one place that the engine's registries, the CLI's options, ``vadx serve`` and the page
all read. A test holds the registries of :mod:`vadx.explain` to these names.
"""

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
