"""Keras models import with the same outputs: built in Keras 3 (torch backend) with random
weights, saved in every supported format, imported, compared on random clips (≤ 1e-5)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

os.environ.setdefault("KERAS_BACKEND", "torch")
keras = pytest.importorskip("keras")
layers = keras.layers

from tests.conftest import run_cli  # noqa: E402
from tests.keras_models import randomise, vgg19_gru  # noqa: E402
from vadx.errors import ModelImportError  # noqa: E402
from vadx.keras import import_keras  # noqa: E402
from vadx.models import CRNNConfig, load_model  # noqa: E402

TOLERANCE = 1e-5
# Keras' torch backend converts tensors with np.array(x, copy=False): not ours to fix
pytestmark = pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning")


def save_every_format(model, folder) -> dict[str, tuple]:
    """``{format: (file, config file or None)}``: .keras, legacy .h5, weights + JSON config."""
    folder.mkdir(exist_ok=True)
    model.save(folder / "m.keras")
    model.save(folder / "m.h5")
    model.save_weights(folder / "m.weights.h5")
    (folder / "m.json").write_text(model.to_json())
    return {
        "keras": (folder / "m.keras", None),
        "h5": (folder / "m.h5", None),
        "weights": (folder / "m.weights.h5", folder / "m.json"),
    }


def as_tf_keras_2(source, target) -> None:
    """Rewrite a legacy .h5 as tf.keras 2 wrote it: its config dialect (batch_input_shape, no
    module keys, inbound nodes as nested lists) and weight names (``conv2d/kernel:0``)."""

    def dialect(node):
        if isinstance(node, dict):
            node = {
                k: dialect(v)
                for k, v in node.items()
                if k not in ("module", "registered_name", "build_config")
            }
            if "batch_shape" in node:
                node["batch_input_shape"] = node.pop("batch_shape")
            if isinstance(node.get("inbound_nodes"), list):
                node["inbound_nodes"] = [
                    [[arg["config"]["keras_history"][0], 0, 0, {}] for arg in n["args"]]
                    for n in node["inbound_nodes"]
                ]
            return node
        return [dialect(v) for v in node] if isinstance(node, list) else node

    with h5py.File(source) as old, h5py.File(target, "w") as new:
        config = json.loads(old.attrs["model_config"])
        new.attrs["model_config"] = json.dumps(dialect(config))
        new.attrs["keras_version"] = "2.15.0"
        weights = new.create_group("model_weights")
        weights.attrs["layer_names"] = old["model_weights"].attrs["layer_names"]
        for top in old["model_weights"].attrs["layer_names"]:
            group = weights.create_group(top)
            names = []
            for name in old["model_weights"][top].attrs["weight_names"]:
                parts = name.split("/")
                short = "/".join(parts[1:] if parts[0] == config["config"]["name"] else parts)
                names.append(short + ":0")
                group[short + ":0"] = np.asarray(old["model_weights"][top][name])
            group.attrs["weight_names"] = names


def keras_probabilities(model, x: np.ndarray) -> np.ndarray:
    return np.asarray(model(x).detach().cpu())


def vadx_probabilities(imported, x: np.ndarray, bgr: bool) -> np.ndarray:
    """The imported model on the clip Keras saw (channel order back to RGB for caffe)."""
    clip = torch.from_numpy(np.ascontiguousarray(x[..., ::-1] if bgr else x)).permute(0, 1, 4, 2, 3)
    with torch.no_grad():
        return imported.model(clip).softmax(-1).numpy()


# ----------------------------------------------------------------------------- model shapes
def vgg19_gap_gru():
    """The reference's shape on 112×122 frames: VGG19 application, GAP, GRU, Dense+Dropout."""
    return vgg19_gru(keras, steps=2, size=(112, 122), units=16, hidden=(12,), classes=3)


def vgg16_gmp_lstm():
    """VGG16 application with its own max pooling, an LSTM, a head without dropout."""
    cnn = keras.applications.VGG16(
        weights=None, include_top=False, input_shape=(32, 48, 3), pooling="max"
    )
    return keras.Sequential(
        [
            keras.Input((3, 32, 48, 3)),
            layers.TimeDistributed(cnn),
            layers.LSTM(10),
            layers.Dense(8, activation="relu"),
            layers.Dense(4, activation="softmax"),
        ]
    )


def stack_flatten_bigru_v1():
    """A plain conv stack (strided 'same', batch-norm, pooling), Flatten, two bidirectional
    reset_after=False GRUs, a batch-norm head and a one-unit sigmoid."""
    cnn = keras.Sequential(
        [
            keras.Input((20, 22, 3)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.BatchNormalization(),
            layers.MaxPooling2D(),
            layers.Conv2D(5, 3, strides=2, padding="same"),
        ],
        name="cnn",
    )
    return keras.Sequential(
        [
            keras.Input((3, 20, 22, 3)),
            layers.TimeDistributed(cnn),
            layers.TimeDistributed(layers.Flatten()),
            layers.Bidirectional(layers.GRU(6, return_sequences=True, reset_after=False)),
            layers.Bidirectional(layers.GRU(6, reset_after=False)),
            layers.BatchNormalization(),
            layers.Dense(1, activation="sigmoid"),
        ]
    )


def functional_stack_gru2():
    """A functional chain: batch-norm before the first conv (takes the BGR flip), valid and
    'same' pooling, a conv without bias, a stacked GRU, a tanh head, a softmax layer."""
    inputs = keras.Input((4, 24, 20, 3))
    x = layers.TimeDistributed(layers.BatchNormalization())(inputs)
    x = layers.TimeDistributed(layers.Conv2D(6, 3, activation="tanh"))(x)
    x = layers.TimeDistributed(layers.MaxPooling2D(3, strides=2, padding="same"))(x)
    x = layers.TimeDistributed(layers.Activation("relu"))(x)
    x = layers.TimeDistributed(layers.Conv2D(5, 1, use_bias=False, name="last_conv"))(x)
    x = layers.TimeDistributed(layers.BatchNormalization(center=False))(x)
    x = layers.TimeDistributed(layers.GlobalAveragePooling2D())(x)
    x = layers.Dropout(0.2)(x)
    x = layers.GRU(8, return_sequences=True)(x)
    x = layers.GRU(8)(x)
    x = layers.Dense(6, activation="tanh")(x)
    x = layers.Dropout(0.3)(x)
    x = layers.Dense(4)(x)
    return keras.Model(inputs, layers.Softmax()(x))


def bilstm_without_bias():
    """A bidirectional LSTM without biases after a one-conv stack."""
    return keras.Sequential(
        [
            keras.Input((3, 16, 16, 3)),
            layers.TimeDistributed(layers.Conv2D(4, 3, activation="relu")),
            layers.TimeDistributed(layers.GlobalAveragePooling2D()),
            layers.Bidirectional(layers.LSTM(5, use_bias=False)),
            layers.Dense(2, activation="softmax"),
        ]
    )


#: builder, preprocessing, expected backbone, rnn kind, explicit head
SHAPES = {
    "vgg19-gap-gru": (vgg19_gap_gru, "caffe", "vgg19", "gru", False),
    "vgg16-gmp-lstm": (vgg16_gmp_lstm, "caffe", "conv_stack", "lstm", False),
    "stack-flatten-bigru-v1": (
        stack_flatten_bigru_v1,
        "unit",
        "conv_stack",
        "gru_reset_before",
        True,
    ),
    "functional-stack-gru2": (functional_stack_gru2, "caffe", "conv_stack", "gru", True),
    "bilstm-without-bias": (bilstm_without_bias, "tf", "conv_stack", "lstm", False),
}


@pytest.mark.parametrize("shape", list(SHAPES))
def test_imported_model_matches_keras_in_every_format(shape, tmp_path):
    build, preprocess, backbone, rnn, explicit_head = SHAPES[shape]
    keras.utils.set_random_seed(0)
    model = build()
    randomise(model, seed=1)
    steps, height, width = model.input_shape[1:4]
    x = np.random.default_rng(2).normal(0, 1, (2, steps, height, width, 3)).astype("float32")
    if preprocess == "caffe":
        x = x * 60  # the range of mean-subtracted 0–255 pixels
    expected = keras_probabilities(model, x)
    if expected.shape[1] == 1:  # a one-unit sigmoid: p(positive)
        expected = np.concatenate([1 - expected, expected], axis=1)
    assert np.ptp(expected) > 0.05  # far from uniform: a wrong layout would show
    files = save_every_format(model, tmp_path)
    if shape in ("stack-flatten-bigru-v1", "functional-stack-gru2"):
        as_tf_keras_2(tmp_path / "m.h5", tmp_path / "tf2.h5")
        files["tf.keras 2 h5"] = (tmp_path / "tf2.h5", None)
    for fmt, (path, config) in files.items():
        imported = import_keras(path, preprocess=preprocess, config_path=config)
        got = vadx_probabilities(imported, x, bgr=preprocess == "caffe")
        assert np.abs(got - expected).max() <= TOLERANCE, fmt
        chosen = imported.model.config
        assert (chosen.backbone, chosen.rnn, bool(chosen.head_layers)) == (
            backbone,
            rnn,
            explicit_head,
        ), fmt
        assert chosen.frame_size == (height, width) and chosen.num_frames == steps
        assert imported.metadata["imported_from"]["format"] == (
            "weights" if fmt == "weights" else "keras" if fmt == "keras" else "h5"
        )


def test_the_reference_built_in_keras_imports_to_the_default_crnn(tmp_path):
    keras.utils.set_random_seed(0)
    model = vgg19_gru(keras)  # the reference's defaults
    assert model.count_params() == 26_389_700
    randomise(model, seed=3)
    model.save(tmp_path / "reference.keras")
    classes = ("fight", "shooting", "fire", "normal")
    imported = import_keras(tmp_path / "reference.keras", classes=classes)
    config = imported.model.config
    default = CRNNConfig()
    assert config.to_dict()["architecture"] == default.to_dict()["architecture"]
    assert (config.num_frames, config.frame_size, config.class_names) == (20, (112, 112), classes)
    assert imported.model.parameter_counts()["all"]["total"] == 26_389_700
    x = np.random.default_rng(4).normal(0, 60, (1, 2, 112, 112, 3)).astype("float32")
    expected = keras_probabilities(model, x)
    assert np.ptp(expected) > 0.05
    got = vadx_probabilities(imported, x, bgr=True)
    assert np.abs(got - expected).max() <= TOLERANCE


def test_caffe_frames_give_keras_probabilities_end_to_end(tmp_path):
    """uint8 frames through vadx's own preprocessing = Keras' preprocess_input on the same."""
    from vadx.video import frames_to_clip

    keras.utils.set_random_seed(0)
    model = bilstm_without_bias()
    randomise(model, seed=5)
    model.save(tmp_path / "m.keras")
    imported = import_keras(tmp_path / "m.keras", preprocess="caffe")
    frames = np.random.default_rng(6).integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    x = keras.applications.vgg19.preprocess_input(frames.astype("float32"))[None]
    expected = keras_probabilities(model, x)
    clip = frames_to_clip(frames, imported.model.config.mean, imported.model.config.std)[None]
    with torch.no_grad():
        got = imported.model(clip).softmax(-1).numpy()
    assert np.abs(got - expected).max() <= TOLERANCE


@pytest.mark.parametrize(
    ("rest", "message"),
    [
        (
            lambda: [
                layers.TimeDistributed(layers.AveragePooling2D(2, name="avg_pool")),
                layers.TimeDistributed(layers.GlobalAveragePooling2D()),
                layers.GRU(4),
            ],
            r"layer 'avg_pool' \(AveragePooling2D\) inside TimeDistributed .*Supported: "
            r"per frame \(TimeDistributed\): Conv2D, MaxPooling2D",
        ),
        (
            lambda: [layers.TimeDistributed(layers.GlobalAveragePooling2D()), layers.SimpleRNN(4)],
            "the model has no recurrent layer",
        ),
        (
            lambda: [
                layers.TimeDistributed(layers.GlobalAveragePooling2D()),
                layers.GRU(4),
                layers.Dense(3, activation="sigmoid"),
            ],
            "a sigmoid over 3 units is multi-label",
        ),
        (
            lambda: [
                layers.TimeDistributed(layers.GlobalAveragePooling2D()),
                layers.GRU(4, return_sequences=True),
            ],
            "the last recurrent layer must return its final state only",
        ),
    ],
    ids=["average-pooling", "simple-rnn", "multi-label", "sequence-output"],
)
def test_unsupported_layers_are_named(rest, message, tmp_path):
    """A conv per frame, then ``rest`` (then a softmax class layer unless ``rest`` has one)."""
    tail = rest()
    if tail[-1].__class__.__name__ != "Dense":
        tail.append(layers.Dense(2, activation="softmax"))
    conv = layers.TimeDistributed(layers.Conv2D(4, 3))
    model = keras.Sequential([keras.Input((3, 16, 16, 3)), conv, *tail])
    model.save(tmp_path / "m.keras")
    with pytest.raises(ModelImportError, match=message):
        import_keras(tmp_path / "m.keras")


def test_files_that_are_not_keras_models_are_refused_clearly(tmp_path):
    import zipfile

    model = bilstm_without_bias()
    model.save_weights(tmp_path / "m.weights.h5")
    (tmp_path / "notes.txt").write_text("not a model")
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as archive:
        archive.writestr("readme.md", "hello")
    cases = {
        tmp_path / "missing.keras": "no Keras model at .*missing.keras: the file does not exist",
        tmp_path / "notes.txt": "neither a Keras archive .* nor an HDF5 file",
        tmp_path / "other.zip": "a zip but not a Keras archive",
        tmp_path
        / "m.weights.h5": r"holds weights only: give the model's config too \(config model.json",
    }
    for path, message in cases.items():
        with pytest.raises(ModelImportError, match=message):
            import_keras(path)
    with pytest.raises(ModelImportError, match="unknown preprocessing 'bgr'; choose from caffe"):
        import_keras(tmp_path / "m.weights.h5", preprocess="bgr")


def test_keras_doc_python_examples_run(tmp_path, monkeypatch, capsys):
    """docs/keras.md's examples, in order: import a Keras model, then export it to ONNX."""
    pytest.importorskip("onnxruntime")
    document = (Path(__file__).resolve().parents[1] / "docs" / "keras.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", document, re.S)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for block in blocks:
        exec(compile(block, "docs/keras.md", "exec"), namespace)
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "conv_stack gru features.4"
    assert (tmp_path / "deploy" / "detector.sequence.onnx").is_file()


def test_cli_import_then_detect_and_explain(tmp_path, capsys):
    from tests.videos import numbered_frames
    from vadx.video import write_mp4

    def vadx(command: str) -> tuple[int, str, str]:
        return run_cli(command.split(), capsys)  # paths under tmp_path have no spaces

    keras.utils.set_random_seed(0)
    model = functional_stack_gru2()
    randomise(model, seed=7)
    keras_file, out, video = tmp_path / "m.keras", tmp_path / "imported", tmp_path / "v.mp4"
    model.save(keras_file)
    code, text, err = vadx(
        f"import-keras {keras_file} --out {out} --classes fight,fire,smoke,normal"
    )
    assert code == 0, err
    assert "imported m.keras" in text
    loaded = load_model(out)
    assert loaded.class_names == ("fight", "fire", "smoke", "normal")
    assert loaded.checkpoint.metadata["imported_from"]["preprocess"] == "caffe"
    write_mp4(video, numbered_frames(12, 48, 64, moving=True), fps=10)
    code, text, err = vadx(f"detect {out} {video} --out {tmp_path / 'd'} --no-annotate")
    assert code == 0, err
    assert (tmp_path / "d" / "events.json").is_file()
    code, text, err = vadx(
        f"explain {out} {video} --out {tmp_path / 'x'} --methods "
        "gradcam,saliency --temporal frame_occlusion --no-timeline"
    )
    assert code == 0, err
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    gradcam = manifest["maps"]["gradcam"]
    # the last conv (Keras' last_conv): 24×20 frames → valid 3×3 → 22×18 → pooled 'same' /2
    assert gradcam["settings"]["layer"] == loaded.default_layer == loaded.layer_names()["last_conv"]
    assert gradcam["raw_shape"] == [1, 4, 11, 9]
    assert manifest["class_names"] == ["fight", "fire", "smoke", "normal"]
    code, text, err = vadx(f"import-keras {keras_file} --out {tmp_path / 'bad'} --classes a,b")
    assert code == 2 and err.startswith("error:") and "the model has 4 outputs" in err
    assert len(err.strip().splitlines()) == 1
