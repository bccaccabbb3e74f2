"""The pipeline: `tasks.core`, the library steps, serving and the UI share, and one package per step (`python -m tasks.<step>`)."""
