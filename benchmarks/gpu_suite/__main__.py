"""`python -m benchmarks.gpu_suite`: the GPU suite (see the package docstring)."""

import sys

from benchmarks.gpu_suite.cli import main

if __name__ == "__main__":
    sys.exit(main())
