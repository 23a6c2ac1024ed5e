"""Job definitions asked for by `name:revision`, as AWS accepts them.

DescribeJobDefinitions takes a list of up to 100 ARNs or `name:revision` short forms; moto
matches ARNs and bare names only, so a `name:revision` entry found nothing. The reconciler reads
a stack's revisions 100 at a time this way (kinds/job_definition.py).
"""

from __future__ import annotations

from typing import Any

from moto.batch.models import BatchBackend

from reconciler.sandbox.patching import Patcher


class DefinitionPatches:
    def install(self, patcher: Patcher) -> None:
        self._original = patcher.replace(BatchBackend, "get_job_definitions", self.lookup)

    def lookup(self, backend: BatchBackend, identifier: str) -> list[Any]:
        name, sep, revision = identifier.partition(":")
        if sep and not identifier.startswith("arn:") and revision.isdigit():
            # AWS: the short form name:revision names exactly one revision.
            found = backend.get_job_definition_by_name_revision(name, revision)
            return [found] if found is not None else []
        return list(self._original(backend, identifier))
