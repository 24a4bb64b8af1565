"""``python -m migrations``: see ``migrations.cli``."""

import sys

from migrations.cli import main

sys.exit(main())
