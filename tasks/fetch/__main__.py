"""``python -m tasks.fetch``: the step's command line (:data:`tasks.fetch.step.STEP`)."""

from tasks.fetch.step import STEP

raise SystemExit(STEP.main())
