"""``python -m tasks.validate``: the step's command line (:data:`tasks.validate.step.STEP`)."""

from tasks.validate.step import STEP

raise SystemExit(STEP.main())
