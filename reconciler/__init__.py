"""reconciler: declare AWS Batch infrastructure in YAML, see the plan, converge AWS to it."""

__version__ = "0.1.0"
API_VERSION = "reconciler.io/v1alpha1"
