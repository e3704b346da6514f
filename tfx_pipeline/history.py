"""`python -m tfx_pipeline.history`: the command; the push history itself is operations/history.py."""

import sys

from tfx_pipeline.operations.history import main

if __name__ == "__main__":
    sys.exit(main())
