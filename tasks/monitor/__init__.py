"""Compare live requests (the inference log) with the production model's training data.

``python -m tasks.monitor [--until ISO]``; the step is :data:`tasks.monitor.step.STEP`."""
