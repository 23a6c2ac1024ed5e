"""Step Functions' Batch integration in the sandbox: requests and replies in the right case.

A scheduled Pipeline is a state machine whose `batch:submitJob` states moto's Step Functions
runner executes (with the sandbox's `execute_state_machine` setting). Its port of the runner
leaves out the step that turns the state's PascalCase parameters (`JobQueue`, `DependsOn`,
`ContainerOverrides.Environment[].Name`) into boto3's request and the reply back into
PascalCase (`JobId`): every Batch state fails with a KeyError. AWS does both; these patches
do them for Batch states, keeping the keys of `Tags` and `Parameters` (the user's) as written.
"""

from __future__ import annotations

from typing import Any

from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import (
    state_task_service_batch as batch_service,
)

from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.schedule_firing import camel


class StatesPatches:
    def install(self, patcher: Patcher) -> None:
        cls = batch_service.StateTaskServiceBatch
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
