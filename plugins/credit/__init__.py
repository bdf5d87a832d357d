"""The `credit` plugin: a spec-first control plane for credit-scoring GBMs.

Versioned datasets (uploaded CSV or Parquet, stored as Parquet with a profile),
features and feature sets, run specs executed by workers through the core model
lifecycle, credit metrics (AUC, Gini, KS, PSI, calibration), self-contained
reports, and scoring with points and adverse-action reasons.
"""

import importlib.metadata

# A built-in plugin ships with the core: its version is Flywheel's (reported by /v1/plugins).
__version__ = importlib.metadata.version("flywheel")
