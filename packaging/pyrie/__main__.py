"""``python -m pyrie``: pyrie, or one of its own programs (see ``pyrie``)."""

import sys

from pyrie import main

sys.exit(main())
