"""The inference service: the production model of the registry, fast, explained, hot-swapped.

``python -m serving`` runs it; :func:`serving.app.create_app` builds the FastAPI app.
Importing this package has no side effects (no model is loaded, no thread started).
"""

__version__ = "0.1.0"
