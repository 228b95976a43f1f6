"""Complaints benchmark (data/public/xci_complaints.csv): prints one JSON line.

Usage: .venv/bin/python benchmarks/xci.py [PATH] [--folds 10] [--config training/configs/default.yaml]
It is `triage-ml benchmark xci`, the same training code as the product.
"""

import sys

from triage_ml.cli import main

if __name__ == "__main__":
    sys.argv = ["triage-ml", "benchmark", "xci", *sys.argv[1:]]
    main()
