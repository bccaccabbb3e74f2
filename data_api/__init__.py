"""Data API simulator: the course's batch contract over synthetic Realtor data.

``python -m data_api`` serves it; :func:`data_api.app.create_app` builds the FastAPI app.
Importing this package has no side effects (nothing is generated, no directory is created).
"""

__version__ = "0.1.0"
