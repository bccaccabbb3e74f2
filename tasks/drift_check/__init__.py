"""Decide whether a curated batch justifies training: drift against the production model's data.

``python -m tasks.drift_check``; the step is :data:`tasks.drift_check.step.STEP`."""
