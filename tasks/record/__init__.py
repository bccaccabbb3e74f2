"""Write the run summary of one batch: what happened to it at every step, and why.

``python -m tasks.record``; the step is :data:`tasks.record.step.STEP`."""
