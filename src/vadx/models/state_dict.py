"""What keeps a state dict from loading into a module: the one comparison that backbone weights
and checkpoints both report with."""

from __future__ import annotations

from collections.abc import Mapping

import torch

#: names listed per kind of problem; the rest are counted
SHOWN = 4


def state_dict_mismatch(own: Mapping[str, torch.Tensor], given: Mapping[str, torch.Tensor]) -> str:
    """The keys of ``own`` (a module's state dict) missing from ``given``, those of ``given`` it
    does not have, and the shapes that differ — ``""`` when ``given`` fits exactly.

    >>> own = {"a": torch.zeros(2), "b": torch.zeros(1)}
    >>> state_dict_mismatch(own, {"a": torch.zeros(3), "c": torch.zeros(1)})
    'missing keys b; unexpected keys c; wrong shapes a: file (3,) vs model (2,)'
    >>> state_dict_mismatch(own, {"a": torch.ones(2), "b": torch.ones(1)})
    ''
    """
    missing = sorted(set(own) - set(given))
    unexpected = sorted(set(given) - set(own))
    mismatched = [
        f"{k}: file {tuple(given[k].shape)} vs model {tuple(own[k].shape)}"
        for k in own
        if k in given and tuple(given[k].shape) != tuple(own[k].shape)
    ]
    problems = [
        f"{kind} {_preview(keys)}"
        for kind, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("wrong shapes", mismatched),
        )
        if keys
    ]
    return "; ".join(problems)


def _preview(items: list[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else "")
