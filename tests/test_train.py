from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from vadx.data import VideoDataset, folder_samples
from vadx.data.synth import SynthConfig, generate
from vadx.errors import ConfigError, InputError
from vadx.models import CRNN, CRNNConfig, load_model
from vadx.train import TrainConfig, class_weights, train
from vadx.video import Augment

CLASSES = ("fight", "shooting", "fire", "normal")
MODEL = CRNNConfig(
    class_names=CLASSES,
    backbone_args={"width": 0.0625},
    num_frames=4,
    frame_size=(32, 32),
    rnn_hidden=16,
    head_hidden=(8,),
    dropout=0.5,
)
FAST = TrainConfig(epochs=3, batch_size=4, momentum=0.9, patience=0, workers=0, seed=3)


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    root = tmp_path_factory.mktemp("synth")
    generate(root, SynthConfig(clips=(3, 2, 0), num_frames=16, size=(48, 48), seed=5))
    return root


def datasets(root, augment=True, model_config=MODEL):
    def load(split, aug):
        samples, classes = folder_samples(root, class_names=CLASSES, split=split)
        return VideoDataset(
            samples,
            classes,
            num_frames=model_config.num_frames,
            frame_size=model_config.frame_size,
            augment=Augment() if aug else None,
            seed=3,
        )

    return load("train", augment), load("val", False)


def new_model(config=MODEL):
    torch.manual_seed(0)
    return CRNN(config)


def weights(path):
    return load_model(path).state_dict()


def test_training_writes_best_last_and_history(synth, tmp_path):
    model = new_model()
    result = train(model, *datasets(synth), tmp_path / "run", FAST, metadata={"note": "t"})
    assert len(result.history) == 3 and result.history[-1].epoch == 2
    assert result.best == tmp_path / "run" / "best" and result.best.is_dir()
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert len(history["epochs"]) == 3 and history["best_epoch"] == result.best_epoch
    info = load_model(result.last).checkpoint
    assert info.metadata["epoch"] == 2 and info.metadata["note"] == "t"
    assert info.metadata["train_config"]["batch_size"] == 4
    assert all(np.isfinite(h.train_loss) and h.clips_per_second > 0 for h in result.history)
    best = load_model(result.best).checkpoint.metadata
    assert best["epoch"] == result.best_epoch


def test_resume_ends_where_an_uninterrupted_run_ends(synth, tmp_path):
    train(new_model(), *datasets(synth), tmp_path / "straight", FAST)

    class Crash(Exception):
        pass

    def crash_after_two(phase, done, total, info):
        if phase == "epoch" and done == 2:
            raise Crash

    with pytest.raises(Crash):
        train(new_model(), *datasets(synth), tmp_path / "resumed", FAST, progress=crash_after_two)
    assert load_model(tmp_path / "resumed" / "last").checkpoint.metadata["epoch"] == 1
    torch.manual_seed(1234)  # a resumed process starts with other RNG state: must not matter
    result = train(new_model(), *datasets(synth), tmp_path / "resumed", FAST, resume=True)
    assert [h.epoch for h in result.history] == [0, 1, 2]
    straight, resumed = (
        weights(tmp_path / "straight" / "last"),
        weights(tmp_path / "resumed" / "last"),
    )
    for key in straight:
        assert torch.equal(straight[key], resumed[key]), key


def test_resuming_a_finished_run_does_nothing(synth, tmp_path):
    train(new_model(), *datasets(synth), tmp_path / "run", FAST.replace(epochs=1))
    before = weights(tmp_path / "run" / "last")
    result = train(
        new_model(), *datasets(synth), tmp_path / "run", FAST.replace(epochs=1), resume=True
    )
    assert len(result.history) == 1
    after = weights(tmp_path / "run" / "last")
    assert all(torch.equal(before[k], after[k]) for k in before)


def trained_with_and_without_cache(synth, tmp_path, model_config) -> dict[str, torch.Tensor]:
    """Train twice, with and without the cache; assert the same losses and weights."""
    config = FAST.replace(epochs=2)
    plain = train(
        new_model(model_config), *datasets(synth, False, model_config), tmp_path / "a", config
    )
    cached = train(
        new_model(model_config),
        *datasets(synth, False, model_config),
        tmp_path / "b",
        config.replace(cache_features=True),
    )
    for a, b in zip(plain.history, cached.history, strict=True):
        assert a.train_loss == pytest.approx(b.train_loss, rel=1e-5)
    first, second = weights(plain.last), weights(cached.last)
    for key in first:
        torch.testing.assert_close(first[key], second[key], rtol=1e-4, atol=1e-6)
    return first


def test_feature_cache_equals_training_without_it(synth, tmp_path):
    frozen = MODEL.replace(freeze="all")
    trained_with_and_without_cache(synth, tmp_path, frozen)


@pytest.mark.parametrize(
    "backbone_args", [{"width": 0.0625}, {"width": 0.0625, "batch_norm": True}]
)
def test_prefix_cache_equals_training_the_last_units_without_it(synth, tmp_path, backbone_args):
    """freeze=2: the frozen prefix's maps are cached once; the last two conv units, the RNN and
    the head train on them exactly as they train on the whole model."""
    partly = MODEL.replace(freeze=2, backbone_args=backbone_args)
    first = trained_with_and_without_cache(synth, tmp_path, partly)
    model = new_model(partly)
    start = model.state_dict()
    trainable = {
        f"backbone.{n}".rsplit(".", 1)[0]
        for n, p in model.backbone.named_parameters()
        if p.requires_grad
    }
    moved = {
        k.rsplit(".", 1)[0]
        for k in first
        if k.startswith("backbone.") and not torch.equal(first[k], start[k])
    }
    assert moved == trainable  # the last two units (weights and BN statistics), nothing else


def test_feature_cache_preconditions(synth, tmp_path):
    with pytest.raises(ConfigError, match="frozen backbone"):
        train(
            new_model(), *datasets(synth, False), tmp_path / "x", FAST.replace(cache_features=True)
        )
    frozen = MODEL.replace(freeze="all")
    with pytest.raises(ConfigError, match="without augmentation"):
        train(
            new_model(frozen),
            *datasets(synth, True, frozen),
            tmp_path / "x",
            FAST.replace(cache_features=True),
        )


def test_class_weights_are_balanced():
    weights_ = class_weights(np.array([0, 0, 0, 1, 3, 3]), 4, CLASSES)
    assert weights_.tolist() == pytest.approx([6 / 9, 6 / 3, 0.0, 6 / 6])
    with pytest.raises(InputError, match="at least two classes; found only fight"):
        class_weights(np.array([0, 0]), 4, CLASSES)


def test_class_mismatch_and_missing_resume(synth, tmp_path):
    other = new_model(MODEL.replace(class_names=("alert", "normal")))
    with pytest.raises(InputError, match="not the model's"):
        train(other, *datasets(synth), tmp_path / "x", FAST)
    with pytest.raises(InputError, match="nothing to resume"):
        train(new_model(), *datasets(synth), tmp_path / "x", FAST, resume=True)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"epochs": 0}, "epochs"),
        ({"optimizer": "lbfgs"}, "optimizer"),
        ({"lr": 0}, "lr"),
        ({"colour": 1}, "unknown training option"),
    ],
)
def test_bad_training_settings(changes, message):
    with pytest.raises(ConfigError, match=message):
        FAST.replace(**changes)


def test_cosine_schedule_records_the_rate_each_epoch_used(synth, tmp_path):
    config = FAST.replace(schedule="cosine", epochs=2, lr=0.1)
    result = train(new_model(), *datasets(synth), tmp_path / "run", config)
    assert [h.lr for h in result.history] == pytest.approx([0.1, 0.05])


def test_a_frozen_backbone_needs_no_split_to_cache_features(synth, tmp_path, monkeypatch):
    """Caching pooled features of a fully frozen backbone never asks it to split."""
    from vadx.models.backbones.vgg import VGG19

    def refuse(self, trainable):
        raise AssertionError("split called for a frozen backbone")

    monkeypatch.setattr(VGG19, "split", refuse)
    frozen = MODEL.replace(freeze="all")
    result = train(
        new_model(frozen),
        *datasets(synth, False, frozen),
        tmp_path / "r",
        FAST.replace(epochs=1, cache_features=True),
    )
    assert len(result.history) == 1


def test_the_sets_a_model_was_trained_on_are_found_again(synth, tmp_path):
    from vadx.data.splits import training_samples
    from vadx.models import save_model
    from vadx.train.session import training_sets

    model = new_model()  # no checkpoint: the defaults
    train_set, val_set = training_sets(model, synth)  # the train/ and val/ splits
    assert (len(train_set), len(val_set)) == (12, 8)
    assert train_set.frame_size == (32, 32) and val_set.num_frames == 4  # as the model sees them
    # no val/ split: the share the run held out, with the run's fraction and seed (default 0)
    for run, seed in [({"val_fraction": 0.5, "seed": 7}, 7), ({"val_fraction": 0.5}, 0)]:
        saved = save_model(model, tmp_path / str(seed), metadata={"train_config": run})
        _, held_out = training_sets(load_model(saved), synth / "train")
        _, expected, _ = training_samples(synth / "train", CLASSES, val_fraction=0.5, seed=seed)
        assert [s.source for s in held_out.samples] == [s.source for s in expected]


def test_another_backbone_named_without_arguments_takes_its_defaults(synth, tmp_path):
    """cpu-scratch's VGG19 arguments (a width, batch norm) are not EfficientNet-Lite0's: naming
    that backbone alone, from the API as from the CLI, trains it with its own defaults."""
    from vadx.train.session import train_from_path

    small = {"num_frames": 4, "frame_size": (32, 32), "rnn_hidden": 8, "head_hidden": (8,)}
    result = train_from_path(
        synth,
        tmp_path / "run",
        "cpu-scratch",
        model_changes={"backbone": "efficientnet_lite0", "freeze": "none", **small},
        train_changes={"epochs": 1, "batch_size": 4, "workers": 0, "augment": False},
    )
    trained = load_model(result.best)
    assert trained.config.backbone == "efficientnet_lite0"
    assert trained.config.backbone_args == {}
