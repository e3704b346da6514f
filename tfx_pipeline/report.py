"""`python -m tfx_pipeline.report`: the command; the report itself is reporting/run_report/."""

import sys

from tfx_pipeline.operations.report import main

if __name__ == "__main__":
    sys.exit(main())
