"""``python -m tasks.promote``: the step's command line (:data:`tasks.promote.step.STEP`).

``python -m tasks.promote --leaderboard`` scores every registered version still lacking a score
on the newest holdout (:mod:`tasks.promote.leaderboard`), without promoting anything.
"""

import sys

if sys.argv[1:2] == ["--leaderboard"]:
    from tasks.promote.leaderboard import STEP as LEADERBOARD

    raise SystemExit(LEADERBOARD.main(sys.argv[2:]))

from tasks.promote.step import STEP

raise SystemExit(STEP.main())
