"""``python -m voltflow.cli``: the `voltflow` command."""

import sys

from voltflow.cli import main

sys.exit(main())
