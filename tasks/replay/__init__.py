"""Start a (group, day) of the data API over: restart its batches and reset the ledger cursor.

``python -m tasks.replay``; the step is :data:`tasks.replay.step.STEP`."""
