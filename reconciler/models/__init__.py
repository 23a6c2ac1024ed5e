"""Pydantic models: the single source of truth for manifests, JSON Schemas and CRDs. No AWS.

One module per kind (listed in reconciler/registry.py); `common.py` holds the envelope and
what kinds share, `fields.py` the field semantics the diff and the decisions read.
"""
