"""Promote the challenger this batch's training registered, if it beats the champion.

``python -m tasks.promote``; the step is :data:`tasks.promote.step.STEP`."""
