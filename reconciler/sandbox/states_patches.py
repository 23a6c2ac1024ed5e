"""Step Functions' Batch integration in the sandbox: requests and replies in the right case.

A scheduled Pipeline is a state machine whose `batch:submitJob` states moto's Step Functions
runner executes (with the sandbox's `execute_state_machine` setting). Its port of the runner
leaves out the step that turns the state's PascalCase parameters (`JobQueue`, `DependsOn`,
`ContainerOverrides.Environment[].Name`) into boto3's request and the reply back into
PascalCase (`JobId`): every Batch state fails with a KeyError. AWS does both; these patches
do them for Batch states, keeping the keys of `Tags` and `Parameters` (the user's) as written.

The runner's requests to this server (a Batch state's SubmitJob) are marked with a token only
this process knows (`RUNNER_HEADER`), so that the recording leaves them out: replaying the
StartExecution that made them runs the execution again, which makes them again (recorded too,
a replay submitted each of its jobs twice).

The runner's modules (an ANTLR grammar among them) are imported by moto at the first Step
Functions request, and importing them with the server took a tenth of its start: the patches
are installed when moto imports the module they patch (a post-import hook), not before.
"""

from __future__ import annotations

import math
import secrets
import sys
import time
from types import ModuleType
from typing import Any

import wrapt

from reconciler.sandbox.patching import Patcher
from reconciler.sandbox.schedule_firing import camel
from reconciler.sandbox.snapshot import under_way

BATCH_SERVICE = (
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_batch"
)
RUNNER = "moto.stepfunctions.parser"
BOTO_CLIENT = f"{RUNNER}.asl.utils.boto_client"  # where every state's client is made
RUNNER_HEADER = "x-reconciler-states-runner"
POLL = 0.01  # seconds between two looks at the running executions


class StatesPatches:
    def __init__(self) -> None:
        self.token = secrets.token_hex(16)  # RUNNER_HEADER's value: a client cannot forge it
        self.last = 0.0  # time.monotonic() of the runner's last request

    def install(self, patcher: Patcher) -> None:
        """Patches moto's runner once it is imported (at once if it is)."""
        wrapt.register_post_import_hook(lambda module: self.patch(patcher, module), BATCH_SERVICE)
        wrapt.register_post_import_hook(lambda module: self.mark(patcher, module), BOTO_CLIENT)

    def mark(self, patcher: Patcher, module: ModuleType) -> None:
        """The clients the runner makes mark their requests. Its modules import the function
        by name: those imported already hold moto's own, and get the replacement too."""
        original = getattr(module.boto_client_for, "__wrapped__", module.boto_client_for)

        def client_for(*args: Any, **kwargs: Any) -> Any:
            client = original(*args, **kwargs)
            client.meta.events.register("request-created", self.marked)
            return client

        for name, loaded in list(sys.modules.items()):
            held = getattr(loaded, "boto_client_for", None) if name.startswith(RUNNER) else None
            if held is not None and getattr(held, "__wrapped__", held) is original:
                patcher.replace_function(loaded, "boto_client_for", client_for)

    def marked(self, request: Any, **_: Any) -> None:
        request.headers[RUNNER_HEADER] = self.token

    def until_executions_end(self, idle: float, most: float = math.inf) -> None:
        """Waits until no state machine execution runs, while the runner sends requests (none
        for `idle` seconds: one waits, in a Wait state, or in a `.sync` state whose jobs do not
        run during a replay), and for `most` seconds at most. A big Pipeline's execution takes
        as long as its SubmitJobs, one after the other."""
        began = time.monotonic()
        while under_way():
            moment = time.monotonic()
            if moment - began >= most or moment - max(began, self.last) >= idle:
                return
            time.sleep(POLL)

    def made(self, request: Any) -> bool:
        """Whether this process's runner sent `request` (a request as moto's recorder sees it)."""
        headers = getattr(request, "headers", None) or {}
        if not secrets.compare_digest(str(headers.get(RUNNER_HEADER, "")), self.token):
            return False
        self.last = time.monotonic()
        return True

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
