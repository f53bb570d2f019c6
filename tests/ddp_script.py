"""Run by test_train_distributed.py under torchrun: 2 CPU processes, gloo."""

import hashlib
import sys
from pathlib import Path

import torch

from vadx import distributed
from vadx.data import VideoDataset, folder_samples
from vadx.models import CRNN, CRNNConfig
from vadx.train import TrainConfig, train

data, out = Path(sys.argv[1]), Path(sys.argv[2])
# prefix-cache: the last 2 units train on cached prefix maps; explained: also with the CAM term of
# the explanation loss (double backpropagation under DDP), on 64-px frames (2×2 last maps)
explained = sys.argv[3:] == ["explained"]
prefix_cache = sys.argv[3:] in (["prefix-cache"], ["explained"])
size = (64, 64) if explained else (32, 32)
distributed.init()
classes = ("fight", "shooting", "fire", "normal")
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


def dataset(split):
    samples, names = folder_samples(data, class_names=classes, split=split)
    return VideoDataset(samples, names, num_frames=4, frame_size=size)


settings = TrainConfig(
    epochs=2,
    batch_size=2,
    momentum=0.9,
    workers=0,
    patience=0,
    cache_features=prefix_cache,
    explanation_loss={"cam": 1.0} if explained else None,
)
result = train(model, dataset("train"), dataset("val"), out, settings)
digest = hashlib.sha256(b"".join(p.detach().numpy().tobytes() for p in model.parameters()))
(out / f"rank{distributed.rank()}.sha256").write_text(digest.hexdigest())
(out / f"rank{distributed.rank()}.epochs").write_text(str(len(result.history)))
distributed.shutdown()
