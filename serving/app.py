"""The FastAPI app: predict, explain, the served model's story, health, readiness, metrics.

``create_app(settings)`` builds the :class:`~serving.service.Service` (watcher, batcher,
inference log, metrics), includes one router per concern (``serving/routes/``) and puts the
predict lane in front of /predict. The lifespan starts the service; nothing waits for the first
model: until it is loaded /ready, /predict and /explain answer 503 saying why.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from fastapi_offline import FastAPIOffline

from serving import __version__
from serving.http_metrics import RequestMetrics
from serving.predict_lane import PredictLane
from serving.records import Record
from serving.routes import admin, explain, model, ops, predict
from serving.service import Service, build_service
from serving.settings import ServingSettings
from tasks.core.logs import configure_logging

DESCRIPTION = """\
House prices from the Realtor model in production (`models:/<MODEL_NAME>@<MODEL_ALIAS>`).

- `POST /predict`: one record or a list of records -> prices in dollars and the model version.
- `POST /explain`: one record -> its price and SHAP contributions per input feature. They add
  up in **log1p(price)** space: `base_value + sum(contributions) = log_price`, and
  `price = expm1(log_price)`.
- `GET /model`: the served version, its metrics, the batches it was trained on, when and why it
  was promoted, and the registry's health. `GET /ready` is 503 until a model is loaded.

Bodies are JSON (`Content-Type: application/json`, else 415) of at most
`SERVING_MAX_BODY_BYTES` (else 413). Prices are in dollars, rounded to cents. Each answer lists
`warnings`: values outside the range the served version was trained on, and unseen categories.

A new version is loaded in the background when the alias moves and swapped in atomically.
"""


def _openapi(app: FastAPI) -> dict[str, Any]:
    """The generated schema, with the Record the request bodies refer to."""
    if app.openapi_schema is None:
        schema = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components["Record"] = Record.model_json_schema(ref_template="#/components/schemas/{model}")
        app.openapi_schema = schema
    return app.openapi_schema


def create_app(settings: ServingSettings | None = None) -> FastAPI:
    """Build the app; the lifespan starts the watcher, the batcher and the log threads."""
    settings = settings or ServingSettings()
    configure_logging(settings.log_format, settings.log_level)
    service: Service = build_service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await service.start()
        try:
            yield
        finally:
            await service.stop()

    app = FastAPIOffline(  # /docs and /redoc with their JS and CSS from the package
        title="Realtor price serving",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
    )
    app.state.service = service  # the one handle on the parts (tests and tools reach them here)
    predict_routes = predict.router(service)
    for routes in (
        ops.router(service),
        predict_routes,
        explain.router(service),
        model.router(service),
        admin.router(service),
    ):
        app.include_router(routes)
    app.openapi = partial(_openapi, app)  # type: ignore[method-assign]
    # Outermost last: the metrics time the lane's requests too.
    app.add_middleware(
        PredictLane,
        path="/predict",
        handler=partial(predict.answer_predict, service),
        route=predict_routes.routes[0],
        admission=service.admission,
    )
    app.add_middleware(RequestMetrics, metrics=service.metrics)
    return app
