"""Fetch the next batch of the data API into the raw zone, and record it in the ledger.

``python -m tasks.fetch``; the step is :data:`tasks.fetch.step.STEP`."""
