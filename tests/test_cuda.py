"""GPU checks: skipped on machines without CUDA (CI); run on a lent GPU machine by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.conftest import TINY
from vadx.models import CRNN, load_model, save_model

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


def test_folded_forward_on_gpu_matches_cpu_and_per_frame_loop(tiny_clip):
    torch.manual_seed(0)
    model = CRNN(TINY).eval()
    with torch.no_grad():
        cpu = model(tiny_clip)
        gpu_model = model.cuda()
        clip = tiny_clip.cuda()
        gpu = gpu_model(clip)
        maps = torch.stack([gpu_model.backbone(clip[:, t]) for t in range(clip.shape[1])], 1)
        loop = gpu_model.forward_maps(maps)
    torch.testing.assert_close(gpu, loop)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-3, atol=1e-4)


def test_checkpoint_saved_from_gpu_loads_on_cpu_and_gpu(tmp_path, tiny_clip):
    torch.manual_seed(0)
    model = CRNN(TINY).cuda().eval()
    path = save_model(model, tmp_path / "m")
    on_cpu = load_model(path)
    on_gpu = load_model(path, device="cuda")
    assert next(on_gpu.parameters()).is_cuda and not next(on_cpu.parameters()).is_cuda
    with torch.no_grad():
        torch.testing.assert_close(on_gpu(tiny_clip.cuda()), model(tiny_clip.cuda()))
        torch.testing.assert_close(
            on_cpu(tiny_clip), model(tiny_clip.cuda()).cpu(), rtol=1e-3, atol=1e-4
        )


def test_training_step_on_gpu_updates_only_unfrozen_parameters(tiny_clip):
    torch.manual_seed(0)
    model = CRNN(TINY.replace(freeze=2)).cuda().train()
    frozen = model.backbone.features[0].weight.detach().clone()
    optimiser = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.1)
    loss = torch.nn.functional.cross_entropy(
        model(tiny_clip.cuda()), torch.tensor([0, 3], device="cuda")
    )
    loss.backward()
    optimiser.step()
    assert torch.equal(model.backbone.features[0].weight, frozen)
    assert model.backbone.features[34].weight.grad is not None


@pytest.mark.parametrize("rnn", ["gru", "lstm"])
def test_explanations_on_gpu_in_eval_mode_match_cpu(tiny_clip, rnn):
    """cuDNN's RNN backward refuses eval mode; the explanation passes turn it off for the RNN."""
    from vadx.explain import METHODS, TEMPORAL, explain

    torch.manual_seed(0)
    model = CRNN(TINY.replace(rnn=rnn)).eval()
    options = {
        "occlusion": {"patch": 16},
        "integrated_gradients": {"steps": 8},
        "smoothgrad": {"samples": 2},
    }
    on_cpu = explain(
        model, tiny_clip, target=1, methods=list(METHODS), temporal=list(TEMPORAL), options=options
    )
    on_gpu = explain(
        model.cuda(),
        tiny_clip.cuda(),
        target=1,
        methods=list(METHODS),
        temporal=list(TEMPORAL),
        options=options,
    )
    assert not model.training and torch.backends.cudnn.enabled
    for name in METHODS:
        if name == "smoothgrad":  # the noise differs between CPU and CUDA generators
            continue
        np.testing.assert_allclose(on_gpu[name].raw, on_cpu[name].raw, rtol=1e-3, atol=1e-5)
    for name in TEMPORAL:
        np.testing.assert_allclose(on_gpu[name].scores, on_cpu[name].scores, rtol=1e-3, atol=1e-5)
