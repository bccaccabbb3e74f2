"""``python -m tasks.record``: the step's command line (:data:`tasks.record.step.STEP`)."""

from tasks.record.step import STEP

raise SystemExit(STEP.main())
