"""Run by test_train_distributed.py under torchrun: 2 CPU processes, gloo. Trains once per
mode named (``plain``, ``prefix-cache``, ``explained``), each into OUT/MODE, in the same
process group: one launch instead of one per mode."""

import hashlib
import sys
from pathlib import Path

import torch

from vadx import distributed
from vadx.data import VideoDataset, folder_samples
from vadx.models import CRNN, CRNNConfig
from vadx.train import TrainConfig, train

data, out, modes = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
distributed.init()
classes = ("fight", "shooting", "fire", "normal")


def dataset(split, size):
    samples, names = folder_samples(data, class_names=classes, split=split)
    return VideoDataset(samples, names, num_frames=4, frame_size=size)


for mode in modes:
    # prefix-cache: the last 2 units train on cached prefix maps; explained: also with the CAM
    # term of the explanation loss (double backpropagation under DDP), on 64-px frames (2×2
    # last maps)
    explained = mode == "explained"
    prefix_cache = mode in ("prefix-cache", "explained")
    size = (64, 64) if explained else (32, 32)
    config = CRNNConfig(
        backbone_args={"width": 0.0625},
        num_frames=4,
        frame_size=size,
        rnn_hidden=16,
        head_hidden=(8,),
        freeze=2 if prefix_cache else "none",
    )
    torch.manual_seed(0)
    model = CRNN(config)
    settings = TrainConfig(
        epochs=2,
        batch_size=2,
        momentum=0.9,
        workers=0,
        patience=0,
        cache_features=prefix_cache,
        explanation_loss={"cam": 1.0} if explained else None,
    )
    run = out / mode
    result = train(model, dataset("train", size), dataset("val", size), run, settings)
    digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters()))
    (run / f"rank{distributed.rank()}.sha256").write_text(digest.hexdigest())
    (run / f"rank{distributed.rank()}.epochs").write_text(str(len(result.history)))
distributed.shutdown()
