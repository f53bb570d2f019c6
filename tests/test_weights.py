from __future__ import annotations

import collections
import hashlib
import http.server

import pytest
import torch
from safetensors.torch import save_file

from tests.conftest import torchvision_vgg19_state_dict
from tests.streams import http_server
from vadx.errors import WeightsError
from vadx.models import VGG19, fetch_weights, load_backbone_weights, read_state_dict


@pytest.fixture(scope="module")
def vgg_state():
    return torchvision_vgg19_state_dict(seed=7)


@pytest.fixture
def vgg_file(tmp_path, vgg_state):
    path = tmp_path / "vgg19-imagenet.pth"
    torch.save(vgg_state, path)
    return path


@pytest.fixture
def hub_dir(tmp_path):
    previous = torch.hub.get_dir()
    torch.hub.set_dir(str(tmp_path / "hub"))
    yield tmp_path / "hub"
    torch.hub.set_dir(previous)


def _sha256(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_loads_a_torchvision_file_with_full_and_prefix_sha256(vgg_file, vgg_state):
    for expected in (_sha256(vgg_file), _sha256(vgg_file)[:8].upper(), None):
        net = VGG19()
        assert load_backbone_weights(net, vgg_file, sha256=expected) == str(vgg_file)
        assert torch.equal(net.features[34].weight, vgg_state["features.34.weight"])


def test_loads_safetensors(tmp_path, vgg_state):
    path = tmp_path / "vgg.safetensors"
    save_file({k: v.contiguous() for k, v in vgg_state.items()}, str(path))
    net = VGG19()
    load_backbone_weights(net, path)
    assert torch.equal(net.features[0].bias, vgg_state["features.0.bias"])


def test_nested_state_dict_is_unwrapped(tmp_path, vgg_state):
    path = tmp_path / "wrapped.pth"
    torch.save({"state_dict": vgg_state, "epoch": 3}, path)
    assert set(read_state_dict(path)) == set(vgg_state)


def test_sha256_mismatch(vgg_file):
    with pytest.raises(WeightsError, match="sha256 mismatch .* corrupt, truncated"):
        fetch_weights(vgg_file, sha256="0" * 64)
    with pytest.raises(WeightsError, match="8 to 64 hex digits"):
        fetch_weights(vgg_file, sha256="abc")


def test_hash_prefix_in_file_name_is_checked(tmp_path, vgg_file):
    # torch.hub's convention, as in vgg19-dcbb9e9d.pth
    good = tmp_path / f"vgg19-{_sha256(vgg_file)[:8]}.pth"
    good.write_bytes(vgg_file.read_bytes())
    assert fetch_weights(good) == good
    bad = tmp_path / "vgg19-dcbb9e9d.pth"
    bad.write_bytes(vgg_file.read_bytes())
    with pytest.raises(WeightsError, match="expected dcbb9e9d"):
        fetch_weights(bad)


def test_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(WeightsError, match="weights file not found: .*vgg19-dcbb9e9d.pth"):
        load_backbone_weights(VGG19(), tmp_path / "nowhere.pth")


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"not a checkpoint at all", "corrupt or not a state dict"),
        (b"", "corrupt or not a state dict"),
    ],
)
def test_corrupt_files(tmp_path, content, message):
    path = tmp_path / "broken.pth"
    path.write_bytes(content)
    with pytest.raises(WeightsError, match=message):
        load_backbone_weights(VGG19(), path)


def test_truncated_file(tmp_path, vgg_file):
    path = tmp_path / "truncated.pth"
    path.write_bytes(vgg_file.read_bytes()[:5000])
    with pytest.raises(WeightsError, match="corrupt or not a state dict"):
        read_state_dict(path)


class Payload:
    def __reduce__(self):
        return (print, ("pickle code ran",))


def test_pickled_code_is_never_executed(tmp_path, capsys):
    path = tmp_path / "evil.pth"
    torch.save({"features.0.weight": Payload()}, path)
    with pytest.raises(WeightsError, match="corrupt or not a state dict"):
        read_state_dict(path)
    assert "pickle code ran" not in capsys.readouterr().out


def test_non_tensor_mapping_is_refused(tmp_path):
    path = tmp_path / "odd.pth"
    torch.save(collections.OrderedDict(a=1), path)
    with pytest.raises(WeightsError, match="does not hold a state dict"):
        read_state_dict(path)


def test_vgg19_has_no_builtin_weights():
    with pytest.raises(WeightsError, match="not bundled .* vgg19-dcbb9e9d.pth"):
        load_backbone_weights(VGG19(), "imagenet")


def test_file_url_is_cached_in_torch_hub(vgg_file, hub_dir, vgg_state):
    net = VGG19()
    source = load_backbone_weights(net, vgg_file.as_uri())
    cached = hub_dir / "checkpoints" / vgg_file.name
    assert source == str(cached) and cached.read_bytes() == vgg_file.read_bytes()
    vgg_file.unlink()  # the same file name again is served from the cache, no download
    again = VGG19()
    assert load_backbone_weights(again, f"file:///gone/{vgg_file.name}") == str(cached)
    assert torch.equal(again.features[0].weight, vgg_state["features.0.weight"])
    assert list((hub_dir / "checkpoints").iterdir()) == [cached]


def test_http_url_from_a_loopback_server(tmp_path, vgg_file, hub_dir):
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(tmp_path))  # noqa: E731
    with http_server(handler) as base:
        path = fetch_weights(base + vgg_file.name, sha256=_sha256(vgg_file))
        assert path.read_bytes() == vgg_file.read_bytes()
        with pytest.raises(WeightsError, match="could not download .*missing.pth"):
            fetch_weights(base + "missing.pth")
    assert not [p for p in (hub_dir / "checkpoints").iterdir() if p.name.endswith(".partial")]
