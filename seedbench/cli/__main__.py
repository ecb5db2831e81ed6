"""`python -m seedbench.cli`."""

import sys

from seedbench.cli.main import main

sys.exit(main())
