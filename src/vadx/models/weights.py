"""Pretrained weights: found by path or URL, verified by sha256, read without unpickling code.

Nothing is downloaded unless the user passes a URL. A URL is fetched once into torch.hub's
cache (``$TORCH_HOME/hub/checkpoints``) and reused afterwards. ``.pth``/``.pt`` files are read
with ``torch.load(weights_only=True)``, ``.safetensors`` files with safetensors.

>>> from vadx.models import build_backbone, load_backbone_weights
>>> vgg = build_backbone("vgg19")                                         # doctest: +SKIP
>>> load_backbone_weights(vgg, "~/weights/vgg19-dcbb9e9d.pth")          # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import urllib.error
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlparse

import torch

from vadx.errors import WeightsError

if TYPE_CHECKING:
    from vadx.models.backbones.base import Backbone

#: torchvision's ImageNet VGG19 checkpoint (the file name carries a sha256 prefix).
VGG19_IMAGENET_FILE = "vgg19-dcbb9e9d.pth"
_HASH_IN_NAME = re.compile(r"-([0-9a-f]{8,64})\.[A-Za-z]+$")


def is_url(source: str | os.PathLike[str]) -> bool:
    """Whether ``source`` is an http(s) or file URL rather than a local path."""
    return urlparse(str(source)).scheme in {"http", "https", "file"}


def fetch_weights(
    source: str | os.PathLike[str], sha256: str | None = None, progress: bool = False
) -> Path:
    """Local, verified path of the weights file ``source`` (a path or an http(s)/file URL).

    ``sha256`` is the file's full hex digest or a prefix of at least 8 characters; without it,
    a digest prefix in the file name (torch.hub's ``name-<sha256 prefix>.pth`` convention) is
    checked when present.
    """
    path = _download(str(source), progress) if is_url(source) else Path(source).expanduser()
    if not path.is_file():
        raise WeightsError(
            f"weights file not found: {path}. Give the path of a local file, or a URL to "
            f"download it from (for VGG19 ImageNet weights: torchvision's {VGG19_IMAGENET_FILE})"
        )
    verify_sha256(path, sha256)
    return path


def verify_sha256(path: Path, expected: str | None) -> None:
    """Raise :class:`WeightsError` if ``path``'s sha256 does not start with ``expected``.

    With ``expected=None`` the prefix embedded in the file name, if any, is checked.
    """
    if expected is None:
        match = _HASH_IN_NAME.search(path.name)
        if match is None:
            return
        expected = match.group(1)
    expected = expected.lower().strip()
    if not re.fullmatch(r"[0-9a-f]{8,64}", expected):
        raise WeightsError(
            f"sha256 must be 8 to 64 hex digits (a full digest or its prefix), got {expected!r}"
        )
    actual = file_sha256(path)
    if not actual.startswith(expected):
        raise WeightsError(
            f"sha256 mismatch for {path}: expected {expected}…, got {actual}. The file is "
            "corrupt, truncated or not the one you meant; delete it and fetch it again"
        )


def file_sha256(path: str | os.PathLike[str], chunk: int = 1 << 20) -> str:
    """Hex sha256 digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def read_state_dict(path: str | os.PathLike[str]) -> dict[str, torch.Tensor]:
    """Tensors of a ``.safetensors`` or ``.pth`` state dict, without executing pickled code."""
    path = Path(path)
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            state = load_file(str(path))
        else:
            state = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError as err:
        raise WeightsError(f"weights file not found: {path}") from err
    except Exception as err:  # torch and safetensors raise many types for a bad file
        raise WeightsError(
            f"cannot read weights from {path}: the file is corrupt or not a state dict "
            f"({type(err).__name__}: {str(err).splitlines()[0] if str(err) else ''})"
        ) from err
    if isinstance(state, Mapping) and isinstance(state.get("state_dict"), Mapping):
        state = state["state_dict"]
    if not isinstance(state, Mapping) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise WeightsError(f"{path} does not hold a state dict (a mapping of names to tensors)")
    return dict(state)


#: weights source naming the pretrained weights a backbone ships (EfficientNet-Lite0's)
BUILTIN = "imagenet"


def load_backbone_weights(
    backbone: Backbone,
    source: str | os.PathLike[str],
    sha256: str | None = None,
    progress: bool = False,
) -> str:
    """Fetch, verify and strictly load pretrained weights into ``backbone``.

    ``source`` is a local file, an http(s)/file URL, or ``"imagenet"`` for the weights the
    backbone ships offline. Returns where the weights came from.
    """
    if str(source) == BUILTIN and not Path(BUILTIN).exists():
        state, origin = backbone.builtin_weights()
        backbone.load_pretrained(state, source=origin)
        return origin
    path = fetch_weights(source, sha256=sha256, progress=progress)
    backbone.load_pretrained(read_state_dict(path), source=str(path))
    return str(path)


def _download(url: str, progress: bool) -> Path:
    name = Path(urlparse(url).path).name or "weights.pth"
    cache = Path(torch.hub.get_dir()) / "checkpoints"
    target = cache / name
    if target.is_file():
        return target
    cache.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{name}.", suffix=".partial")
    os.close(fd)
    try:
        torch.hub.download_url_to_file(url, tmp, progress=progress)
        os.replace(tmp, target)
    except (urllib.error.URLError, OSError, ValueError) as err:
        raise WeightsError(
            f"could not download {url}: {err}. Check the URL and the network, or download the "
            "file yourself and pass its local path"
        ) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return target
