"""The audit report of an explained clip (``report.html``,
:mod:`vadx.explanations.report.page`) and the viewer that draws its overlays in the browser
(``viewer.js``, also served to the review page).
"""

from vadx.explanations.report.page import VIEWER, write_report

__all__ = ["VIEWER", "write_report"]
