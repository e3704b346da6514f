"""`python -m tfx_pipeline.monitor`: the command; the skew monitor itself is operations/monitor.py."""

import sys

from tfx_pipeline.operations.monitor import main

if __name__ == "__main__":
    sys.exit(main())
