"""`python cluster/tools/workloads` (make cluster-run): see run.py."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from workloads.run import main

sys.exit(main(sys.argv[1:]))
