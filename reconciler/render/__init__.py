"""Presentation: plans, progress and live state as people and programs read them (text tables,
JSON/YAML, pull-request markdown). Pure: no AWS, no printing. Sits above the engine; the
engine never imports it.
"""
