"""Reading manifests: YAML with file:line kept for every value, then validation into models."""

from reconciler.manifests.loader import Document, load_paths
from reconciler.manifests.validate import load_resources, validate_documents

__all__ = ["Document", "load_paths", "load_resources", "validate_documents"]
