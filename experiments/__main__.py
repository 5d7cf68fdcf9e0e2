"""``python -m experiments [NAME ...] [--quick] [--out DIR]``: run the experiments and
write ``report.html`` and ``results.json``."""

import sys

from .runner import main

sys.exit(main())
