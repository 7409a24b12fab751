"""``python -m pdrelay.cli``: the ``pdrelay`` command without its console script."""

import sys

from pdrelay.cli import main

sys.exit(main())
