"""``python -m nets.data``: the data command line (:mod:`nets.data.cli`)."""

import sys

from nets.data.cli import main

if __name__ == "__main__":
    sys.exit(main())
