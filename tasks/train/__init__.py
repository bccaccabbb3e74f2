"""Train a challenger price model on the curated data, and register it in MLflow.

``python -m tasks.train``; the step is :data:`tasks.train.step.STEP`."""
