"""The API's description of itself: ``/api/health``, the served models and the explanation
methods a job may name."""

from __future__ import annotations

import functools

from fastapi import APIRouter

from vadx._version import __version__
from vadx.explain import DEFAULT_METHODS, DEFAULT_TEMPORAL, METHODS, TEMPORAL
from vadx.normality import CLASSES as NORMALITY_CLASSES
from vadx.normality import NormalityModel
from vadx.serve import schema
from vadx.serve.routing import Routes
from vadx.serve.served import ServedModel


def meta_router(routes: Routes) -> APIRouter:
    router = APIRouter()
    route = functools.partial(routes.add, router)
    server, guarded = routes.server, routes.guarded

    @router.get("/api/health", operation_id="health", response_model=schema.Health)
    def health() -> schema.Health:
        """Liveness, version, models, how many jobs are in each state, and whether the cameras'
        events are being stored (no token needed)."""
        states: dict[str, int] = {}
        for job in server.jobs.jobs.values():
            states[job.state] = states.get(job.state, 0) + 1
        return schema.Health(
            status="ok",
            version=__version__,
            models=list(server.models),
            jobs=states,
            token_required=guarded,
            recording=None if server.console is None else server.console.recording.status.state,
        )

    @route("get", "/api/models", "models", response_model=list[schema.ModelInfo])
    def models() -> list[schema.ModelInfo]:
        """The served models: kind (classifier or normality), classes, clip length, frame
        size."""
        return [_describe(name, model) for name, model in server.models.items()]

    @route("get", "/api/methods", "methods", response_model=list[schema.MethodInfo])
    def methods() -> list[schema.MethodInfo]:
        """The explanation methods (spatial) and estimators (temporal) a request may name."""
        return methods_catalogue()

    return router


def methods_catalogue() -> list[schema.MethodInfo]:
    """Every explanation method and temporal estimator, the defaults first (in their order):
    names, description, default or not."""
    catalogue = []
    for registry, defaults, kind in (
        (METHODS, DEFAULT_METHODS, "spatial"),
        (TEMPORAL, DEFAULT_TEMPORAL, "temporal"),
    ):
        for name in [*defaults, *(n for n in registry if n not in defaults)]:
            cls = registry[name]
            catalogue.append(
                schema.MethodInfo(
                    name=name,
                    display_name=cls.display_name,
                    kind=kind,
                    description=cls.description,
                    default=name in defaults,
                )
            )
    return catalogue


def _describe(name: str, model: ServedModel) -> schema.ModelInfo:
    c = model.config
    if isinstance(model, NormalityModel):
        return schema.ModelInfo(
            name=name,
            id=model.model_id,
            kind="normality",
            backbone=c.backbone,
            classes=list(NORMALITY_CLASSES),
            normal=NORMALITY_CLASSES[1],
            frames=1,
            frame_size=list(c.frame_size),
        )
    return schema.ModelInfo(
        name=name,
        id=model.model_id,
        kind="classifier",
        backbone=c.backbone,
        classes=list(model.class_names),
        normal=c.normal_class,
        frames=c.num_frames,
        frame_size=list(c.frame_size),
    )
