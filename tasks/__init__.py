"""The pipeline's tasks: one command line per step (``python -m tasks.<name>``) plus shared modules."""
