"""`python -m tfx_pipeline.explain`: the command; the explanation itself is reporting/explain.py."""

import sys

from tfx_pipeline.operations.explain import main

if __name__ == "__main__":
    sys.exit(main())
