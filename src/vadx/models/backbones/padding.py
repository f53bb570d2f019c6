"""TensorFlow's ``"same"`` padding, which PyTorch lacks for strided layers.

TF pads so that the output has ``ceil(input / stride)`` cells, the odd pixel going to the bottom
and the right; PyTorch's symmetric ``padding`` cannot express that.

>>> same_pads((5, 6), kernel=(3, 3), stride=(2, 2))
[0, 1, 1, 1]
"""

from __future__ import annotations

import math
from collections.abc import Sequence


def same_pads(size: Sequence[int], kernel: Sequence[int], stride: Sequence[int]) -> list[int]:
    """``F.pad`` amounts ``[left, right, top, bottom]`` for an input of ``size = (h, w)``."""
    pads = []
    for side, k, s in zip(reversed(size), reversed(kernel), reversed(stride), strict=True):
        total = max((math.ceil(side / s) - 1) * s + k - side, 0)
        pads += [total // 2, total - total // 2]
    return pads
