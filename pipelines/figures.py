"""Matplotlib figures as inline images, so each job's HTML report is one self-contained file."""

from __future__ import annotations

import base64
import io
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # matplotlib is imported by the plotting functions, not at import time
    from matplotlib.figure import Figure


def inline_png(figure: Figure) -> str:
    """`figure` as an <img> tag holding its PNG inline (base64)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=96)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="plot" src="data:image/png;base64,{data}">'
