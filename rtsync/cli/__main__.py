"""`python -m rtsync.cli ...` is the `rtsync` command, like `python -m rtsync ...`."""

import sys

from . import main

sys.exit(main())
