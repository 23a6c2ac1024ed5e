"""Step Functions' Batch integration in the sandbox: requests and replies in the right case.

A scheduled Pipeline is a state machine whose `batch:submitJob` states moto's Step Functions
runner executes (with the sandbox's `execute_state_machine` setting). Its port of the runner
leaves out the step that turns the state's PascalCase parameters (`JobQueue`, `DependsOn`,
`ContainerOverrides.Environment[].Name`) into boto3's request and the reply back into
PascalCase (`JobId`): every Batch state fails with a KeyError. AWS does both; these patches
do them for Batch states, keeping the keys of `Tags` and `Parameters` (the user's) as written.

The runner's modules (an ANTLR grammar among them) are imported by moto at the first Step
Functions request, and importing them with the server took a tenth of its start: the patches
are installed when moto imports the module they patch (a post-import hook), not before.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import wrapt

from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.schedule_firing import camel

BATCH_SERVICE = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"
)


class StatesPatches:
    def install(self, patcher: Patcher) -> None:
        """Patches the Batch service of moto's runner once it is imported (at once if it is)."""
        wrapt.register_post_import_hook(lambda module: self.patch(patcher, module), BATCH_SERVICE)

    def patch(self, patcher: Patcher, module: ModuleType) -> None:
        cls = module.StateTaskServiceBatch
        patcher.replace(cls, "_normalise_parameters", self.normalise_parameters)
        patcher.replace(cls, "_normalise_response", self.normalise_response)

    def normalise_parameters(
        self, service: Any, parameters: dict[str, Any], *_: Any, **__: Any
    ) -> None:
        request = camel(parameters)
        parameters.clear()
        parameters.update(request)

    def normalise_response(self, service: Any, response: Any, *_: Any, **__: Any) -> None:
        if isinstance(response, dict):
            for key in list(response):
                response[key[:1].upper() + key[1:]] = response.pop(key)
