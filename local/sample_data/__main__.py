"""``python -m local.sample_data``: write sample raw data and its truth file."""

import sys

from local.sample_data.generate import main

sys.exit(main())
