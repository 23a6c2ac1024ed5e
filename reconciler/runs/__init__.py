"""Runs of pipelines and tasks: identity, state read from AWS, submission, watching, reports."""
