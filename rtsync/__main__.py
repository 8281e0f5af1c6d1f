"""`python -m rtsync ...` is the `rtsync` command."""

import sys

from .cli import main

sys.exit(main())
