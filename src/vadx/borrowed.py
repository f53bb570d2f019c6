"""State a library call borrows from its caller, and always gives back.

A call that must run a model in eval mode, or seed the global random generators, borrows that
state for its duration: a notebook user whose model is training gets it back training — with
every submodule's own flag as it was (a frozen backbone kept in eval inside a training model)
— and a process's random stream is not reseeded behind its back. Each borrow is a context
manager that restores on exit, also when the block raises.

>>> from torch import nn
>>> model = nn.Sequential(nn.Linear(2, 2), nn.Dropout()).train()
>>> with eval_mode(model):
...     model.training
False
>>> model.training
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn


@contextlib.contextmanager
def modes_kept(model: nn.Module) -> Iterator[None]:
    """Every module's train/eval flag of ``model`` as it was before the block, after it: the
    block may switch them (a training loop, a validation pass)."""
    flags = [(module, module.training) for module in model.modules()]
    try:
        yield
    finally:
        for module, training in flags:
            module.training = training


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[None]:
    """Run ``model`` in eval mode (dropout off, batch-norm statistics fixed), then restore every
    module's own train/eval flag."""
    with modes_kept(model):
        model.eval()
        yield


@contextlib.contextmanager
def random_kept() -> Iterator[None]:
    """The global torch generators (CPU and every visible GPU) back in their state after the
    block, whatever it drew or seeded; also a decorator (``@random_kept()``)."""
    with torch.random.fork_rng():
        yield


@contextlib.contextmanager
def seeded(seed: int) -> Iterator[None]:
    """The global torch generators seeded with ``seed`` inside the block, and back in their
    previous state after it."""
    with random_kept():
        torch.manual_seed(seed)
        yield
