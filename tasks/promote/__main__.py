"""``python -m tasks.promote``: the step's command line (:data:`tasks.promote.step.STEP`)."""

from tasks.promote.step import STEP

raise SystemExit(STEP.main())
