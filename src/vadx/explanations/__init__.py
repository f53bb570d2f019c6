"""Explanations of videos, for people: which clips of a video to explain and how
(:mod:`vadx.explanations.clip`), the self-contained ``report.html`` that draws them
(:mod:`vadx.explanations.report`), and explanations written as files — one span, every
window or the flagged ones — with their audit record (:mod:`vadx.explanations.video`).

The engine that computes the maps and curves of a clip tensor is :mod:`vadx.explain`.
"""
