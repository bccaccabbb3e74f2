"""``python -m tasks.monitor``: the step's command line (:data:`tasks.monitor.step.STEP`)."""

from tasks.monitor.step import STEP

raise SystemExit(STEP.main())
