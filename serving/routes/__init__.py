"""One FastAPI router per concern: predict, explain, model, ops (health, readiness, metrics),
admin. Each ``router(service)`` answers from the :class:`serving.service.Service`."""
