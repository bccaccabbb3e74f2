"""``python -m tasks.drift_check``: the step's command line (:data:`tasks.drift_check.step.STEP`)."""

from tasks.drift_check.step import STEP

raise SystemExit(STEP.main())
