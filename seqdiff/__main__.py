"""``python -m seqdiff`` is the same as the ``seqdiff`` command."""

import sys

from seqdiff.cli.main import main

sys.exit(main())
