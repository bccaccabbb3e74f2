"""``python -m tasks.replay``: the step's command line (:data:`tasks.replay.step.STEP`)."""

from tasks.replay.step import STEP

raise SystemExit(STEP.main())
