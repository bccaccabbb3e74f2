"""``python -m tasks.train``: the step's command line (:data:`tasks.train.step.STEP`)."""

from tasks.train.step import STEP

raise SystemExit(STEP.main())
