"""Matplotlib figures without pyplot: the library's plots never switch the process's backend
nor add to pyplot's list of open figures, so a notebook's own plotting stays as its user set
it. Make a plot as ``matplotlib.figure.Figure(...)``, draw on ``figure.subplots(...)``, and
finish it with :func:`png_bytes`.

>>> from matplotlib.figure import Figure
>>> figure = Figure(figsize=(2, 1))
>>> _ = figure.subplots().plot([0, 1], [1, 0])
>>> png_bytes(figure, dpi=50)[:8]
b'\\x89PNG\\r\\n\\x1a\\n'
"""

from __future__ import annotations

import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def png_bytes(figure: Figure, dpi: int) -> bytes:
    """``figure`` rendered as a PNG at ``dpi`` (by Agg, whatever backend the process uses)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()
