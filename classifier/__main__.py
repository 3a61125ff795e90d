"""`python -m classifier` is the `classifier` command."""

import sys

from classifier.cli import main

sys.exit(main())
