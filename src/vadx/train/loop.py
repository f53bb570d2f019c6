"""The training loop: epochs of training and validation, checkpoints, resume, DDP.

``run/`` after training::

    last/       checkpoint of the latest epoch + trainer state (what --resume continues from)
    best/       checkpoint with the best validation macro-F1 (ties: lower validation loss)
    history.json  one entry per epoch: losses, accuracy, macro-F1, learning rate, clips/s

Each epoch's randomness (shuffling, augmentation, dropout) is a function of the seed and the
epoch, and the dropout RNG is saved with ``last``: a run killed at any point and resumed ends
exactly where an uninterrupted run with the same seed ends (on CPU).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler, TensorDataset

from vadx import distributed
from vadx.borrowed import eval_mode, modes_kept, random_kept
from vadx.data.dataset import ClipBatch, ClipItem, VideoDataset, collate_clips, make_loader
from vadx.errors import ConfigError, InputError, NonFiniteError
from vadx.files import write_json
from vadx.models.checkpoint import load_model, save_model
from vadx.models.crnn import CRNN, fold_time, unfold_time
from vadx.train.config import ExplanationLoss, TrainConfig
from vadx.train.explanation_loss import cam_outside_share, input_gradient_penalty, mask_coverage
from vadx.train.state import optimizer_from_files, read_trainer_state, writers

Progress = Callable[[str, int, int, dict[str, float]], None]


@dataclass(frozen=True)
class EpochResult:
    """Metrics of one epoch."""

    epoch: int
    train_loss: float
    train_accuracy: float
    val_loss: float
    val_accuracy: float
    val_macro_f1: float
    lr: float
    seconds: float
    clips_per_second: float
    #: the explanation loss's mean over the epoch (weights applied), when trained with one
    train_explanation_loss: float | None = None


@dataclass(frozen=True)
class TrainResult:
    """What :func:`train` produced."""

    best: Path
    last: Path
    history: list[EpochResult]
    best_epoch: int
    stopped_early: bool


def trainable_units(model: CRNN) -> int:
    """How many of the backbone's last units train (0 for a frozen backbone)."""
    freeze = model.config.freeze
    if freeze == "all":
        return 0
    if freeze == "none":
        return len(model.backbone.freeze_units())
    return int(freeze)


class _Step(nn.Module):
    """What one training step runs: the whole CRNN; or, on cached inputs, the RNN + head on
    per-frame features (frozen backbone; its maps when an explanation loss needs them), or the
    backbone's trainable units + RNN + head on the frozen prefix's maps. With labels and masks
    it also returns the explanation loss (:mod:`vadx.train.explanation_loss`)."""

    def __init__(
        self, model: CRNN, cached: bool, explanation: ExplanationLoss | None = None
    ) -> None:
        super().__init__()
        self.model, self.cached, self.explanation = model, cached, explanation
        trainable = trainable_units(model) if cached else 0
        self.suffix = model.backbone.split(trainable)[1] if trainable else None
        normal = model.config.normal_class
        self.normal = model.class_names.index(normal) if normal is not None else -1

    def maps(self, inputs: torch.Tensor) -> torch.Tensor:
        """The backbone's last feature maps ``(B, T, C, h, w)`` of a batch of inputs."""
        if not self.cached:
            return self.model.frame_maps(inputs)
        if self.suffix is None:  # cached for an explanation loss: the maps themselves
            return inputs
        return unfold_time(self.suffix(fold_time(inputs)), *inputs.shape[:2])

    def forward(
        self,
        inputs: torch.Tensor,
        labels: torch.Tensor | None = None,
        masks: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        if self.cached and self.suffix is None and self.explanation is None:
            return self.model.forward_features(inputs), None  # the cache: pooled features
        if self.explanation is None or labels is None or masks is None:
            logits = (
                self.model(inputs)
                if not self.cached
                else self.model.forward_maps(self.maps(inputs))
            )
            return logits, None
        anomalous = labels != self.normal
        loss = inputs.new_zeros(())
        if self.explanation.input_gradient:  # the pixels: never cached
            gradient_term, logits = input_gradient_penalty(self.model, inputs, masks, anomalous)
            loss = loss + self.explanation.input_gradient * gradient_term
        if self.explanation.cam:
            coverage = masks if masks.is_floating_point() else mask_coverage(masks)
            cam_term, logits = cam_outside_share(
                self.maps(inputs), self.model.forward_maps, labels, coverage, anomalous
            )
            loss = loss + self.explanation.cam * cam_term
        return logits, loss


def class_weights(labels: np.ndarray, num_classes: int, names: tuple[str, ...]) -> torch.Tensor:
    """``N / (K · n_k)`` per class: rare classes weigh more (sklearn's "balanced")."""
    counts = np.bincount(labels, minlength=num_classes)
    present = counts > 0
    if present.sum() < 2:
        raise InputError(
            "training needs clips of at least two classes; found only "
            + ", ".join(f"{names[k]} ({counts[k]})" for k in np.flatnonzero(present))
        )
    weights = np.where(present, len(labels) / (present.sum() * np.maximum(counts, 1)), 0.0)
    return torch.tensor(weights, dtype=torch.float32)


def make_optimizer(model: CRNN, config: TrainConfig) -> torch.optim.Optimizer:
    """SGD or AdamW; weight decay only on the head's weights (the reference's dense L2)."""
    decayed = [p for n, p in model.head.named_parameters() if n.endswith("weight")]
    decayed_ids = {id(p) for p in decayed}
    rest = [p for p in model.parameters() if p.requires_grad and id(p) not in decayed_ids]
    groups = [
        {"params": decayed, "weight_decay": config.weight_decay},
        {"params": rest, "weight_decay": 0.0},
    ]
    if config.optimizer == "sgd":
        return torch.optim.SGD(groups, lr=config.lr, momentum=config.momentum)
    return torch.optim.AdamW(groups, lr=config.lr)


def make_scheduler(optimizer: torch.optim.Optimizer, config: TrainConfig):
    if config.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return None


#: the largest input cache training keeps in memory
CACHE_LIMIT_BYTES = 8 * 2**30


class _CachedFeatures:
    """What the frozen part of the backbone computes for every clip of a dataset, once: the
    pooled per-frame features of a frozen backbone, or the maps of the frozen prefix when the
    backbone's last units train (:meth:`~vadx.models.Backbone.split`). With ``masks`` (an
    explanation loss) a frozen backbone's maps are kept unpooled, and each clip's mask coverage
    (:func:`~vadx.train.explanation_loss.mask_coverage`; zeros for a clip without masks) is
    kept beside them."""

    def __init__(
        self, model: CRNN, dataset: VideoDataset, config: TrainConfig, progress, masks: bool
    ) -> None:
        loader = make_loader(dataset, batch_size=config.batch_size, workers=config.workers)
        loader.collate_fn = _collate(masks)
        trainable = trainable_units(model)
        prefix = model.backbone.split(trainable)[0] if trainable else None
        features, labels, coverage, done = [], [], [], 0
        with eval_mode(model), torch.no_grad():
            for batch in loader:
                clip = batch.clip.to(_device(model))
                if prefix is None and not masks:
                    cached = model.frame_features(clip)
                else:
                    cached = model.frame_maps(clip) if prefix is None else None
                    if cached is None:
                        cached = unfold_time(prefix(fold_time(clip)), *clip.shape[:2])
                    _check_cache_size(cached, len(batch.label), len(dataset))
                features.append(cached.cpu())
                labels.append(batch.label)
                if masks:
                    coverage.append(mask_coverage(batch.masks))
                done += len(batch.label)
                if progress is not None:
                    progress("caching features", done, len(dataset), {})
        tensors = [torch.cat(features), torch.cat(labels)]
        self.data = TensorDataset(*tensors, *([torch.cat(coverage)] if masks else []))


def _check_cache_size(cached: torch.Tensor, clips: int, total: int) -> None:
    size = cached.element_size() * cached.numel() / clips * total
    if size > CACHE_LIMIT_BYTES:
        raise ConfigError(
            f"caching the frozen prefix's maps would take {size / 2**30:.1f} GiB; train fewer "
            "backbone units (a smaller {freeze} N), smaller frames, or without {cache_features}",
            "freeze",
            "cache_features",
        )


def _device(model: nn.Module) -> torch.device:
    return next(model.parameters()).device  # a CRNN, or DDP around one


@random_kept()  # it seeds and restores the global generators: the caller's come back
def train(
    model: CRNN,
    train_set: VideoDataset,
    val_set: VideoDataset,
    out: str | Path,
    config: TrainConfig | None = None,
    *,
    resume: bool = False,
    progress: Progress | None = None,
    metadata: dict[str, Any] | None = None,
) -> TrainResult:
    """Train ``model`` on ``train_set``, validating on ``val_set`` each epoch; see the module.

    With ``resume=True`` the model, optimizer, scheduler, RNG and history are restored from
    ``out/last`` and training continues with the next epoch. ``model`` comes back in the
    train/eval mode it came in, every module's own flag as it was.
    """
    out = Path(out)
    config = config or TrainConfig()
    rank, world = distributed.rank(), distributed.world_size()
    if config.cache_features:
        if model.config.freeze == "none":
            raise ConfigError(
                "feature caching needs a frozen backbone, or a frozen prefix (freeze='all' or "
                "an int: the number of last units that train)"
            )
        if trainable_units(model):
            model.backbone.split(trainable_units(model))  # refuses a backbone that can't split
        if train_set.augment is not None:
            raise ConfigError(
                "feature caching needs training without augmentation: augmented frames give "
                "new features every epoch"
            )
    if train_set.class_names != model.class_names:
        raise InputError(
            f"the data's classes ({', '.join(train_set.class_names)}) are not the model's "
            f"({', '.join(model.class_names)})"
        )
    weights = class_weights(train_set.labels, model.num_classes, model.class_names)
    if not config.class_weights:
        weights = (weights > 0).float()
    device = _device(model)
    optimizer = make_optimizer(model, config)
    scheduler = make_scheduler(optimizer, config)
    history: list[EpochResult] = []
    start_epoch, best_score, best_epoch, waited = 0, (-math.inf, math.inf), -1, 0
    if resume:
        last = out / "last"
        if not last.is_dir():
            raise InputError(f"nothing to resume: {last} does not exist")
        saved = load_model(last, device=device)
        model.load_state_dict(saved.state_dict())
        tensors, state = read_trainer_state(last)
        optimizer_from_files(optimizer, tensors, state.optimizer)
        if scheduler is not None and state.scheduler is not None:
            scheduler.load_state_dict(state.scheduler)
        before = saved.checkpoint.metadata.get("train_config") or {}
        _apply_changed_settings(optimizer, scheduler, before.get("lr", config.lr), config)
        torch.set_rng_state(tensors["rng.torch"])
        history = [EpochResult(**entry) for entry in state.history]
        start_epoch = state.epoch + 1
        best_score, best_epoch = state.best_score, state.best_epoch
        waited = state.waited
        if start_epoch >= config.epochs or 0 < config.patience <= waited:
            return TrainResult(out / "best", last, history, best_epoch, state.stopped_early)
    cached = config.cache_features
    explanation = config.explanation
    if explanation is not None:
        _check_explanation_loss(explanation, train_set, cached)
    train_data: Dataset = train_set
    val_data: Dataset = val_set
    if cached:
        masks = explanation is not None
        train_data = _CachedFeatures(model, train_set, config, progress, masks).data
        val_data = _CachedFeatures(model, val_set, config, progress, masks).data
    step = distributed.wrap(_Step(model, cached, explanation))
    loss_fn = nn.CrossEntropyLoss(weight=weights.to(device))
    stopped_early = False
    extra = dict(metadata or {}, train_config=config.to_dict())
    with modes_kept(model):  # each epoch trains, then validates in eval mode
        for epoch in range(start_epoch, config.epochs):
            train_set.set_epoch(epoch)
            began = time.perf_counter()
            train_loss, train_accuracy, seen, explanation_loss = _run_epoch(
                step, train_data, config, epoch, loss_fn, optimizer, progress, cached
            )
            train_seconds = time.perf_counter() - began
            val_loss, val_accuracy, val_f1 = _validate(step, val_data, config, loss_fn, cached)
            lr = optimizer.param_groups[0]["lr"]  # the rate this epoch trained with
            if scheduler is not None:
                scheduler.step()
            result = EpochResult(
                epoch=epoch,
                train_loss=train_loss,
                train_accuracy=train_accuracy,
                val_loss=val_loss,
                val_accuracy=val_accuracy,
                val_macro_f1=val_f1,
                lr=lr,
                seconds=time.perf_counter() - began,
                clips_per_second=seen * world / max(train_seconds, 1e-9),
                train_explanation_loss=explanation_loss,
            )
            history.append(result)
            score = (val_f1, val_loss)
            improved = score[0] > best_score[0] or (
                score[0] == best_score[0] and score[1] < best_score[1]
            )
            if improved:
                best_score, best_epoch, waited = score, epoch, 0
            else:
                waited += 1
            stopped_early = config.patience > 0 and waited >= config.patience
            finished = stopped_early or epoch == config.epochs - 1
            if rank == 0:
                info = dict(extra, epoch=epoch, metrics=asdict(result))
                if improved:
                    save_model(model, out / "best", metadata=info)
                progress_state = {
                    "epoch": epoch,
                    "best_score": list(best_score),
                    "best_epoch": best_epoch,
                    "waited": waited,
                    "finished": finished,
                    "stopped_early": stopped_early,
                    "history": [asdict(h) for h in history],
                }
                save_model(
                    model,
                    out / "last",
                    metadata=info,
                    extra_files=writers(optimizer, scheduler, progress_state),
                )
                _write_history(out / "history.json", history, best_epoch)
            if progress is not None:
                progress("epoch", epoch + 1, config.epochs, asdict(result))
            distributed.barrier()
            if stopped_early:
                break
    return TrainResult(out / "best", out / "last", history, best_epoch, stopped_early)


def _apply_changed_settings(optimizer, scheduler, old_lr: float, config: TrainConfig) -> None:
    """Carry a resumed run's changed settings (``--override``) into its restored optimizer and
    scheduler: every rate scaled by the new over the old ``lr``, a cosine schedule stretched
    to end at the new ``epochs``."""
    ratio = config.lr / old_lr
    if ratio != 1:
        for group in optimizer.param_groups:
            group["lr"] *= ratio
            if "initial_lr" in group:
                group["initial_lr"] *= ratio
        if scheduler is not None:
            scheduler.base_lrs = [rate * ratio for rate in scheduler.base_lrs]
    if isinstance(scheduler, torch.optim.lr_scheduler.CosineAnnealingLR):
        scheduler.T_max = config.epochs


def _loader(data: Dataset, config: TrainConfig, epoch: int, shuffle: bool, cached: bool):
    # the order of clips depends on (seed, epoch) only: its own generator, which the
    # DataLoader (drawing worker seeds) does not touch
    order = torch.Generator().manual_seed(config.seed * 100_003 + epoch)
    generator = torch.Generator().manual_seed(config.seed * 100_003 + epoch + 50_000)
    if distributed.world_size() > 1:
        sampler = torch.utils.data.DistributedSampler(data, shuffle=shuffle, seed=config.seed)
        sampler.set_epoch(epoch)
    else:
        sampler = RandomSampler(data, generator=order) if shuffle else SequentialSampler(data)
    if cached:  # a generator even without workers: else the loader draws from the global RNG
        return DataLoader(data, batch_size=config.batch_size, sampler=sampler, generator=generator)
    workers = config.workers if config.workers is not None else min(8, torch.get_num_threads())
    return DataLoader(
        data,
        batch_size=config.batch_size,
        sampler=sampler,
        num_workers=workers,
        collate_fn=_collate(config.explanation_loss is not None),
        generator=generator,
    )


def _collate(masks: bool):
    """Batch items; with ``masks`` every item gets one (all-false for a clip without), so that
    a batch mixing clips with and without masks keeps them."""
    return _collate_with_masks if masks else collate_clips


def _collate_with_masks(items: list[ClipItem]) -> ClipBatch:
    return collate_clips(
        [
            item
            if item.masks is not None
            else replace(
                item,
                masks=torch.zeros(item.clip.shape[0], *item.clip.shape[-2:], dtype=torch.bool),
            )
            for item in items
        ]
    )


def _unpack(batch, cached: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    if cached:
        return batch[0], batch[1], (batch[2] if len(batch) > 2 else None)
    return batch.clip, batch.label, batch.masks


def _check_explanation_loss(explanation: ExplanationLoss, train_set: Dataset, cached: bool) -> None:
    if cached and explanation.input_gradient:
        raise ConfigError(
            "the input_gradient term of the explanation loss needs the pixels: train without "
            "{cache_features}, or with the cam term alone",
            "cache_features",
        )
    samples = getattr(train_set, "samples", [])
    if not any(getattr(sample, "masks", None) is not None for sample in samples):
        raise InputError(
            "the explanation loss needs masks, and none of the training clips has them: use "
            "vadx synth data, or import annotated boxes with vadx import-boxes"
        )


def _run_epoch(step, data, config, epoch, loss_fn, optimizer, progress, cached):
    step.train()
    device = next(step.parameters()).device
    total_loss, explained, correct, seen = 0.0, 0.0, 0, 0
    with_masks = config.explanation_loss is not None
    loader = _loader(data, config, epoch, shuffle=True, cached=cached)
    for inputs, labels, masks in (_unpack(b, cached) for b in loader):
        inputs, labels = inputs.to(device), labels.to(device)
        optimizer.zero_grad(set_to_none=True)
        if with_masks and masks is not None:
            logits, extra = step(inputs, labels, masks.to(device))
        else:
            logits, extra = step(inputs)
        loss = loss_fn(logits, labels)
        if extra is not None:
            loss = loss + extra
            explained += extra.item() * len(labels)
        if not bool(torch.isfinite(loss)):
            raise NonFiniteError(
                f"training diverged in epoch {epoch}: the loss became {loss.item()} after "
                f"{seen} clips; nothing of this epoch was saved. Lower {{lr}} (now {config.lr:g}), "
                "or check the data and the starting weights",
                "lr",
            )
        loss.backward()
        optimizer.step()
        total_loss += loss.item() * len(labels)
        correct += int((logits.argmax(1) == labels).sum())
        seen += len(labels)
        if progress is not None:
            running = {"loss": total_loss / seen, "accuracy": correct / seen}
            progress("train", seen, len(loader.sampler), running)
    explanation_loss = explained / max(seen, 1) if with_masks else None
    return total_loss / max(seen, 1), correct / max(seen, 1), seen, explanation_loss


def _validate(step, data, config, loss_fn, cached):
    from sklearn.metrics import f1_score

    device = next(step.parameters()).device
    logits_all, labels_all = [], []
    with eval_mode(step), torch.no_grad():
        batches = (_unpack(b, cached) for b in _loader(data, config, 0, False, cached))
        for inputs, labels, _ in batches:
            logits_all.append(step(inputs.to(device))[0].cpu())
            labels_all.append(labels)
    logits, labels = distributed.gather_validation(torch.cat(logits_all), torch.cat(labels_all))
    logits, labels = logits[: len(data)], labels[: len(data)]  # DistributedSampler's padding
    loss = float(loss_fn(logits.to(device), labels.to(device)))
    predictions = logits.argmax(1).numpy()
    accuracy = float((predictions == labels.numpy()).mean())
    f1 = float(f1_score(labels.numpy(), predictions, average="macro", zero_division=0))
    return loss, accuracy, f1


def _write_history(path: Path, history: list[EpochResult], best_epoch: int) -> None:
    document = {"best_epoch": best_epoch, "epochs": [asdict(h) for h in history]}
    write_json(path, document)
