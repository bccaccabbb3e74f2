"""Validate a raw batch with the Great Expectations suite: curate it, or quarantine it.

``python -m tasks.validate``; the step is :data:`tasks.validate.step.STEP`."""
