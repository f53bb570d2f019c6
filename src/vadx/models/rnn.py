"""The recurrent part of the CRNN: PyTorch's GRU and LSTM, and the GRU PyTorch lacks.

PyTorch's :class:`~torch.nn.GRU` applies the reset gate *after* the recurrent product,
``n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`` — Keras' ``reset_after=True`` (its default
since TF 2). The GRU of Cho et al. (2014), Keras' ``reset_after=False``, applies it *before*,
``n = tanh(W_in x + W_hn (r ⊙ h) + b_n)``, with one bias per gate: :class:`GRUResetBefore`.

All three take ``(B, T, F)`` and return ``(outputs (B, T, D·H), state)`` (D = 2 when
bidirectional, the two directions concatenated). :func:`last_state` is what the head sees: the
forward direction after the last step and, when bidirectional, the backward direction after its
last step — the first frame — exactly what Keras returns with ``return_sequences=False``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

RNN_KINDS = ("gru", "lstm", "gru_reset_before")


class GRUResetBefore(nn.Module):
    """GRU with the reset gate before the recurrent product (Keras ``reset_after=False``).

    Parameters follow :class:`torch.nn.GRU`'s names and gate order (r, z, n):
    ``weight_ih_l{k}`` ``(3H, F)``, ``weight_hh_l{k}`` ``(3H, H)`` and one ``bias_l{k}`` ``(3H,)``
    per layer (``_reverse`` for the backward direction).
    """

    def __init__(
        self,
        input_size: int,
        hidden_size: int,
        num_layers: int = 1,
        bidirectional: bool = False,
    ) -> None:
        super().__init__()
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        directions = 2 if bidirectional else 1
        bound = 1 / math.sqrt(hidden_size)
        for layer in range(num_layers):
            width = input_size if layer == 0 else hidden_size * directions
            for suffix in self._suffixes(layer):
                for name, shape in (
                    ("weight_ih", (3 * hidden_size, width)),
                    ("weight_hh", (3 * hidden_size, hidden_size)),
                    ("bias", (3 * hidden_size,)),
                ):
                    parameter = nn.Parameter(torch.empty(shape).uniform_(-bound, bound))
                    self.register_parameter(f"{name}{suffix}", parameter)

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}"] + ([f"_l{layer}_reverse"] if self.bidirectional else [])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        finals = []
        for layer in range(self.num_layers):
            outputs = []
            for suffix in self._suffixes(layer):
                reverse = suffix.endswith("reverse")
                sequence = self._run(x.flip(1) if reverse else x, suffix)
                finals.append(sequence[:, -1])
                outputs.append(sequence.flip(1) if reverse else sequence)
            x = torch.cat(outputs, dim=-1)
        return x, torch.stack(finals)

    def _run(self, x: torch.Tensor, suffix: str) -> torch.Tensor:
        w_ih, w_hh, bias = (
            getattr(self, f"{n}{suffix}") for n in ("weight_ih", "weight_hh", "bias")
        )
        w_hr, w_hz, w_hn = w_hh.chunk(3)
        inputs = torch.nn.functional.linear(x, w_ih, bias)  # all steps at once
        h = x.new_zeros(x.shape[0], self.hidden_size)
        steps = []
        for t in range(x.shape[1]):
            x_r, x_z, x_n = inputs[:, t].chunk(3, dim=-1)
            r = torch.sigmoid(x_r + h @ w_hr.T)
            z = torch.sigmoid(x_z + h @ w_hz.T)
            n = torch.tanh(x_n + (r * h) @ w_hn.T)
            h = (1 - z) * n + z * h
            steps.append(h)
        return torch.stack(steps, dim=1)


def build_rnn(
    kind: str, input_size: int, hidden_size: int, num_layers: int, bidirectional: bool
) -> nn.Module:
    """The recurrent module of ``kind`` (one of :data:`RNN_KINDS`), batch first."""
    if kind == "gru_reset_before":
        return GRUResetBefore(input_size, hidden_size, num_layers, bidirectional)
    rnn_class = {"gru": nn.GRU, "lstm": nn.LSTM}[kind]
    return rnn_class(
        input_size,
        hidden_size,
        num_layers=num_layers,
        batch_first=True,
        bidirectional=bidirectional,
    )


def last_state(outputs: torch.Tensor, bidirectional: bool) -> torch.Tensor:
    """``(B, D·H)``: each direction's output after its last step (see the module docstring)."""
    if not bidirectional:
        return outputs[:, -1]
    forward, backward = outputs.chunk(2, dim=-1)
    return torch.cat([forward[:, -1], backward[:, 0]], dim=-1)
