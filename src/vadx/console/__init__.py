"""The operators' console: many live cameras, one analysis engine.

* :mod:`vadx.console.cameras` — the cameras declared in one YAML file (torch-free);
* :mod:`vadx.console.engine` — :class:`~vadx.console.engine.CameraHub`, one engine for every
  camera: a capture thread each, the CNN batched across cameras, each camera's own windows and
  events, and each camera's live status.
"""
