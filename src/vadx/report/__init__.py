"""The audit report of an explained clip (``report.html``, :mod:`vadx.report.page`) and the
viewer that draws its overlays in the browser (``viewer.js``, also served to the review page).
"""

from vadx.report.page import VIEWER, write_report

__all__ = ["VIEWER", "write_report"]
