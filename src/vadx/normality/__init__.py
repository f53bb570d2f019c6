"""Each camera's normal, learnt from its own footage without labels: ``vadx learn-normal``.

A **normality model** holds, for every location of a CNN feature map (a grid over the frame),
what the camera usually shows there:

- *appearance*: the location's features, projected to ``channels`` dimensions by a fixed random
  projection (PaDiM, Defard et al. 2021), against a *memory*, a coreset of the features learnt
  (PatchCore, Roth et al. 2022): the distance of a new frame's feature to the nearest one in
  it, from any location, says how unusual the location looks (or, ``appearance="gaussian"``,
  the Mahalanobis distance to a Gaussian of the location's features, PaDiM's);
- *motion*: the mean and spread of the location's frame-to-frame change (mean absolute
  difference of grey levels over the cell), so that a fight where people usually walk is
  unusual even when every single frame looks ordinary.

Both are turned into standard units against the footage itself (how far the held-back frames
are from the memory; or the training frames from their own Gaussians), and a frame's
**anomaly map** is, per cell, the larger of the two: the map *is* the explanation, by
construction. The frame's score reads the map at several
scales (its most unusual cell, and the mean of its most unusual 0.5 %, 2 % and 8 % of cells),
each in units of its typical value on the footage learnt from, and takes the largest: one cell
very unusual, or a larger patch somewhat unusual. The model may analyse every k-th frame only
(``frame_step``), the frames between keeping the last map. Detection smooths it over frames and
finds events with the usual hysteresis, on the score ``p(unusual) = s^k / (s^k + threshold^k)``
(0.5 at the threshold, ``k`` the ``sharpness``). The threshold is calibrated on footage held
back from fitting (the last share of each file), at the rate of false alarms per hour the
operator accepts.

A normality model is a checkpoint like a classifier's: ``config.json`` (format
``vadx-normality``, the settings, the calibration, the footage's sha256) and
``normality.safetensors`` (the backbone's weights, the projection, the statistics).
"""

from vadx.normality.calibrate import (
    CALIBRATED_SETTINGS,
    MARGIN,
    Calibration,
    UnusualTrack,
    calibrate,
    calibrated_config,
    calibration_mismatch,
    unusual_track,
)
from vadx.normality.checkpoint import (
    NormalityDescription,
    describe_normality,
    is_normality,
    load_normality,
    save_normality,
)
from vadx.normality.detection import (
    detect_unusual,
    detection_of,
    draw_map,
    write_beside,
    write_event_maps,
    write_map_video,
    write_unusual,
)
from vadx.normality.evaluate import (
    FalseAlarmRate,
    false_alarm_rate,
    frame_roc_auc,
    frame_size_maps,
    pixel_roc_auc,
    pro_auc,
)
from vadx.normality.learn import learn_normal, source_backbone
from vadx.normality.model import (
    CLASSES,
    CONFIG_FILE,
    FORMAT,
    SCALES,
    WEIGHTS_FILE,
    FrameRun,
    NormalityConfig,
    NormalityModel,
    mahalanobis,
    scale_values,
    unusual_probability,
)

__all__ = [
    "CALIBRATED_SETTINGS",
    "CLASSES",
    "CONFIG_FILE",
    "FORMAT",
    "MARGIN",
    "SCALES",
    "WEIGHTS_FILE",
    "Calibration",
    "FalseAlarmRate",
    "FrameRun",
    "NormalityConfig",
    "NormalityDescription",
    "NormalityModel",
    "UnusualTrack",
    "calibrate",
    "calibrated_config",
    "calibration_mismatch",
    "describe_normality",
    "detect_unusual",
    "detection_of",
    "draw_map",
    "false_alarm_rate",
    "frame_roc_auc",
    "frame_size_maps",
    "is_normality",
    "learn_normal",
    "load_normality",
    "mahalanobis",
    "pixel_roc_auc",
    "pro_auc",
    "save_normality",
    "scale_values",
    "source_backbone",
    "unusual_probability",
    "unusual_track",
    "write_beside",
    "write_event_maps",
    "write_map_video",
    "write_unusual",
]
