"""`python -m tfx_pipeline.runs`: the command; the listing and comparison are reporting/run_comparison.py."""

import sys

from tfx_pipeline.operations.runs import main

if __name__ == "__main__":
    sys.exit(main())
