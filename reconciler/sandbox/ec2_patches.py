"""The EC2 API of the sandbox: moto's instance calls, patched so that an instance behaves like
one on AWS (and the tool's run their user data, `ec2_host`).

`moto_ext.install()` creates one `Ec2Patches` per server. What it changes, for every client:
- RunInstances: `ClientToken` is honoured (AWS: the same token returns the same reservation
  and instances, never a second launch; with other parameters it is
  IdempotentParameterMismatch), and the IDs of what it launches are derived from the token,
  so that a replayed recording gives them back whatever other requests drew from moto's
  random generator in between (concurrent ones are recorded in arrival order); injected
  launch faults fail it (`ec2_faults`); tags of TagSpecifications `spot-instances-request`
  are applied to the spot request that `InstanceMarketOptions` (MarketType spot) now makes
  (moto made none): one-time, `active` and `fulfilled`, with the instance's ID, `closed` once
  the instance is terminated; instances start `pending` (moto: `running` at once) and are
  handed to the `InstanceHost`.
- TerminateInstances, StopInstances, StartInstances and RebootInstances (and anything else
  that terminates or stops a moto instance) tell the host, which kills the instance's
  processes.
- CancelSpotInstanceRequests leaves the request `cancelled` and described (moto forgot it),
  and an unknown ID is AWS's InvalidSpotInstanceRequestID.NotFound.
- GetConsoleOutput returns what a tool instance's user data printed (the last 64 KB).
- `POST /moto-api/config` with `{"reconcilerSandbox": {"ec2": {...}}}` is the sandbox's own
  call: `failLaunches`, `kill` (`ec2_faults`) and `powerOff` (`ec2_standins`); any other body
  is moto's config, as before.
- A replayed recording holds the host still; once it is done, the host ends the instances that
  ran when the old server went away (`InstanceHost.after_replay`).
Each place that departs from plain moto says so in a comment starting "AWS:".
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import sys
from typing import Any

from moto.core.responses import ActionResult
from moto.core.types import Base64EncodedString
from moto.core.utils import utcnow
from moto.ec2.exceptions import EC2ClientError
from moto.ec2.models.instances import Instance, InstanceBackend
from moto.ec2.models.spot_requests import SpotInstanceRequest, SpotRequestBackend
from moto.ec2.responses.general import General
from moto.ec2.responses.instances import InstanceResponse
from moto.ec2.utils import random_spot_request_id
from moto.moto_api._internal.recorder.models import Recorder
from moto.moto_api._internal.responses import MotoAPIResponse

from reconciler.aws.tags import MANAGED_BY, TOOL
from reconciler.sandbox.ec2_faults import LaunchRefused
from reconciler.sandbox.ec2_host import InstanceHost
from reconciler.sandbox.patching import Patcher

ADMIN_KEY = "reconcilerSandbox"
MOTO_TOKEN = "ABCDE"  # what moto passes on as the ClientToken when there is none
# Not part of what a ClientToken's request is compared on.
UNCOMPARED = ("Action", "Version", "ClientToken", "DryRun")


class LaunchedSpotRequest(SpotInstanceRequest):
    """A one-time spot request for an instance RunInstances launched (moto's own launches one
    instance of its own when it is created)."""

    def __init__(self, backend: Any, instance: Any, options: dict[str, Any], tags: Any) -> None:
        self._launched = instance
        spot = options.get("SpotOptions") or {}
        super().__init__(
            backend,
            random_spot_request_id(),
            spot.get("MaxPrice"),
            instance.image_id,
            spot.get("SpotInstanceType") or "one-time",
            None,
            spot.get("ValidUntil"),
            None,
            None,
            instance.key_name,
            [group.id for group in instance.security_groups],
            instance.user_data,
            instance.instance_type,
            instance.placement.zone,
            None,
            None,
            False,
            instance.subnet_id,
            tags,
            None,
            spot.get("InstanceInterruptionBehavior") or "terminate",
        )

    def launch_instance(self) -> Any:
        return self._launched


class Ec2Patches:
    """The patches above, for one server's `InstanceHost`."""

    _run_instances: Any  # moto's originals, set by install()
    _launch: Any
    _describe_instances: Any
    _terminate: Any
    _stop: Any
    _start: Any
    _reboot: Any
    _console: Any
    _config: Any
    _replay: Any

    def __init__(self, host: InstanceHost) -> None:
        self.host = host

    def install(self, patcher: Patcher) -> None:
        self._run_instances = patcher.replace(InstanceResponse, "run_instances", self.run)
        self._launch = patcher.replace(InstanceBackend, "run_instances", self.launch)
        self._describe_instances = patcher.replace(
            InstanceResponse, "describe_instances", self.describe
        )
        self._terminate = patcher.replace(Instance, "terminate", self.terminate)
        self._stop = patcher.replace(Instance, "stop", self.stop)
        self._start = patcher.replace(Instance, "start", self.start)
        self._reboot = patcher.replace(Instance, "reboot", self.reboot)
        patcher.replace(SpotRequestBackend, "cancel_spot_instance_requests", self.cancel_spot)
        self._console = patcher.replace(General, "get_console_output", self.console)
        self._config = patcher.replace(MotoAPIResponse, "config", self.config)
        # moto's /moto-api/ routes are bound methods, made when their module is imported (when
        # the first /moto-api/ request is served, after install()); one imported earlier
        # would still call moto's own config, and the stand-ins' shutdown would do nothing.
        urls = sys.modules.get("moto.moto_api._internal.urls")
        if urls is not None:
            urls.url_paths["{0}/moto-api/config"] = urls.response_instance.config
        self._replay = patcher.replace(Recorder, "replay_recording", self.replay)

    # --- RunInstances -----------------------------------------------------------------------

    def run(self, response: Any) -> Any:
        if response._get_param("DryRun", False):
            return self._run_instances(response)
        token = response._get_param("ClientToken")
        key = (response.current_account, response.region, str(token))
        fingerprint = _fingerprint(response.querystring)
        if token:
            # AWS: a retried RunInstances returns what the first one launched.
            found = self.host.token(key)
            if found is not None:
                if found[0] != fingerprint:
                    raise EC2ClientError(
                        "IdempotentParameterMismatch",
                        "The client token you have provided is associated with a request "
                        "that had different parameters. Do not reuse a client token with "
                        "different requests.",
                    )
                return ActionResult(found[1])
        subnet = response._get_param("SubnetId") or _nic_subnet(response)
        try:
            self.host.faults.check(subnet, response._get_param("InstanceType") or "m1.small")
        except LaunchRefused as refused:
            _, headers, body = response.serialized(
                ActionResult(EC2ClientError(refused.code, refused.message))
            )
            headers["status"] = refused.status  # AWS: capacity is a server error (500)
            return body, headers
        result = self._run_instances(response)
        reservation = result.result
        tags = response._parse_tag_specification()
        owned = tags.get("instance", {}).get(MANAGED_BY) == TOOL
        market = response._get_param("InstanceMarketOptions") or {}
        backend = response.ec2_backend
        host = response.headers.get("Host")
        endpoint = self.host.config.endpoint or (f"http://{host}" if host else None)
        with self.host.lock:
            for instance in reservation.instances:
                spot = None
                if str(market.get("MarketType", "")).lower() == "spot":
                    # AWS: a spot launch has its spot request, tagged at creation.
                    spot = LaunchedSpotRequest(backend, instance, market, tags)
                    backend.spot_instance_requests[spot.id] = spot
                    instance.spot_instance_request_id = spot.id
                self.host.launched(instance, reservation, owned, spot, endpoint)
            if token:
                self.host.tokens[key] = (fingerprint, reservation)
        return result

    def launch(self, backend: Any, *args: Any, **kwargs: Any) -> Any:
        reservation = self._launch(backend, *args, **kwargs)
        token = kwargs.get("client_token")
        if token and token != MOTO_TOKEN:
            _derive_ids(backend, reservation, str(token))
        return reservation

    # --- instance ends ----------------------------------------------------------------------

    # AWS: an instance's state and its reason change together. moto's terminate and stop set
    # the state, then moto's reason, and the host sets the real one after that (`ended`): each
    # holds the host's lock throughout, and DescribeInstances makes its reply under it.

    def terminate(self, instance: Any) -> Any:
        with self.host.lock:
            previous = self._terminate(instance)
            self.host.ended(instance, terminated=True)
        return previous

    def stop(self, instance: Any) -> Any:
        with self.host.lock:
            previous = self._stop(instance)
            self.host.ended(instance, terminated=False)
        return previous

    def describe(self, response: Any) -> Any:
        with self.host.lock:
            status, headers, body = response.serialized(self._describe_instances(response))
        headers["status"] = status
        return body, headers

    def start(self, instance: Any) -> Any:
        previous = self._start(instance)
        self.host.started(instance)
        return previous

    def reboot(self, instance: Any) -> Any:
        self._reboot(instance)
        self.host.rebooted(instance)

    def cancel_spot(self, backend: Any, request_ids: list[str]) -> list[Any]:
        requests = []
        for request_id in request_ids:
            request = backend.spot_instance_requests.get(request_id)
            if request is None:  # AWS: an error, not moto's KeyError (HTTP 500)
                raise EC2ClientError(
                    "InvalidSpotInstanceRequestID.NotFound",
                    f"The spot instance request ID '{request_id}' does not exist",
                )
            if request.state in ("open", "active"):
                # AWS: a cancelled request is still described, as cancelled; its instance runs
                running = request.state == "active" and request.instance.state == "running"
                request.state = "cancelled"
                request._status_code = (
                    "request-canceled-and-instance-running" if running else "canceled"
                )
                request.status_message = "Spot Instance request canceled by the user."
            requests.append(request)
        return requests

    # --- console, admin calls, replays ------------------------------------------------------

    def console(self, response: Any) -> Any:
        instance_id = response._get_param("InstanceId")
        output = self.host.console(str(instance_id))
        if output is None:
            return self._console(response)
        # AWS: the instance's console: here, what its user data printed.
        encoded = Base64EncodedString.from_encoded_bytes(base64.b64encode(output))
        return ActionResult({"InstanceId": instance_id, "Timestamp": utcnow(), "Output": encoded})

    def config(self, api: Any, request: Any, full_url: str, headers: Any) -> Any:
        if request.method != "POST":
            return self._config(api, request, full_url, headers)
        raw = _body(request, headers)
        try:
            body = json.loads(raw or b"{}")
        except ValueError:
            body = None
        if not isinstance(body, dict) or ADMIN_KEY not in body:
            if hasattr(request, "environ"):
                request.environ["wsgi.input"] = io.BytesIO(raw)  # for moto's own reading
            return self._config(api, request, full_url, headers)
        reply_headers = {"Content-Type": "application/json"}
        try:
            done = self.admin(body[ADMIN_KEY])
        except (KeyError, ValueError, TypeError, AttributeError) as err:
            message = err.args[0] if isinstance(err, KeyError) and err.args else str(err)
            return 400, reply_headers, json.dumps({"error": str(message)}).encode()
        return 200, reply_headers, json.dumps(done).encode()

    def admin(self, request: dict[str, Any]) -> dict[str, Any]:
        ec2 = request["ec2"]
        if "failLaunches" in ec2:
            self.host.faults.add(ec2["failLaunches"])
            return {"failLaunches": "added"}
        if "kill" in ec2:
            spec = ec2["kill"]
            self.host.kill(str(spec["instanceId"]), str(spec.get("cause") or "spot-interruption"))
            return {"killed": spec["instanceId"]}
        if "powerOff" in ec2:
            spec = ec2["powerOff"]
            action, delay = str(spec.get("action", "poweroff")), float(spec.get("delaySeconds", 0))
            self.host.power_off(str(spec["instanceId"]), action, delay)
            return {"powerOff": action}
        raise ValueError("ec2: expected one of failLaunches, kill, powerOff")

    def replay(self, recorder: Any, *args: Any, **kwargs: Any) -> Any:
        with self.host.lock:
            self.host.replaying = True
        try:
            return self._replay(recorder, *args, **kwargs)
        finally:
            with self.host.lock:
                self.host.replaying = False
                self.host.after_replay()


def _derive_ids(backend: Any, reservation: Any, token: str) -> None:
    """Gives the reservation and its instances IDs of moto's shape derived from the token."""

    def derived(prefix: str, part: str) -> str:
        seed = "\0".join((backend.account_id, backend.region_name, token, part))
        return f"{prefix}-{hashlib.sha256(seed.encode()).hexdigest()[:17]}"

    backend.reservations.pop(reservation.id, None)
    reservation.id = derived("r", "reservation")
    backend.reservations[reservation.id] = reservation
    for index, instance in enumerate(reservation.instances):
        old, instance.id = instance.id, derived("i", str(index))
        if old in backend.tags:  # tags are kept by resource ID
            backend.tags[instance.id] = backend.tags.pop(old)


def _fingerprint(querystring: dict[str, Any]) -> str:
    compared = {k: v for k, v in sorted(querystring.items()) if k not in UNCOMPARED}
    return hashlib.sha256(json.dumps(compared, sort_keys=True, default=str).encode()).hexdigest()


def _nic_subnet(response: Any) -> str | None:
    nics = response._get_param("NetworkInterfaces") or []
    return next(
        (str(n["SubnetId"]) for n in nics if isinstance(n, dict) and n.get("SubnetId")), None
    )


def _body(request: Any, headers: Any) -> bytes:
    if not hasattr(request, "environ"):
        body = getattr(request, "body", b"") or b""
        return body.encode() if isinstance(body, str) else bytes(body)
    size = int(headers.get("Content-Length") or 0)
    return bytes(request.environ["wsgi.input"].read(size)) if size else b""
