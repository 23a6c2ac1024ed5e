"""Fault injection for EC2 on the sandbox: launches that fail, instances that die.

Tests (and anyone scripting the sandbox) call the helpers here with the sandbox's endpoint:
- `fail_launches(endpoint, count, code=..., subnet=..., instance_type=...)`: the next `count`
  RunInstances calls that match (any, or only those for that subnet and/or instance type)
  fail with `code` (default InsufficientInstanceCapacity, an HTTP 500 as on AWS: boto3
  retries it itself, so a client with retries sees fewer failures than injected; one with
  `retries={"total_max_attempts": 1}` sees each);
- `kill_instance(endpoint, instance_id, cause="spot-interruption")`: the instance is
  terminated at once, its user data killed before it finishes, with stateReason
  Server.SpotInstanceTermination (or, for cause="host-failure", Server.InternalError), and its
  spot request closed.
They POST `{"reconcilerSandbox": {"ec2": {...}}}` to `/moto-api/config` (`ec2_patches` handles
it; the recording keeps it, so a restored sandbox replays the same faults at the same point).
`LaunchFaults` is the server's side. Standard library only.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

CAPACITY = "InsufficientInstanceCapacity"
# Launch errors a test may inject, with AWS's HTTP status (capacity is a server error).
LAUNCH_ERRORS = MappingProxyType(
    {
        CAPACITY: 500,
        "InstanceLimitExceeded": 400,
        "VcpuLimitExceeded": 400,
        "InsufficientFreeAddressesInSubnet": 400,
        "Unsupported": 400,
    }
)
SPOT_INTERRUPTION, HOST_FAILURE = CAUSES = ("spot-interruption", "host-failure")


class LaunchRefused(Exception):
    """An injected launch error: AWS's code, message and HTTP status."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(message)
        self.code, self.message, self.status = code, message, status


@dataclass
class LaunchFault:
    remaining: int
    code: str = CAPACITY
    subnet: str | None = None
    instance_type: str | None = None

    def matches(self, subnet: str | None, instance_type: str) -> bool:
        return self.subnet in (None, subnet) and self.instance_type in (None, instance_type)


@dataclass(eq=False)
class LaunchFaults:
    """The faults injected into one server, consumed by the launches they match."""

    faults: list[LaunchFault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, spec: dict[str, Any]) -> None:
        fault = LaunchFault(
            remaining=int(spec.get("count", 1)),
            code=str(spec.get("code") or CAPACITY),
            subnet=spec.get("subnet") or None,
            instance_type=spec.get("instanceType") or None,
        )
        if fault.code not in LAUNCH_ERRORS:
            raise ValueError(f"code: must be one of {', '.join(LAUNCH_ERRORS)}")
        with self.lock:
            self.faults.append(fault)

    def check(self, subnet: str | None, instance_type: str) -> None:
        """Raises LaunchRefused for the first fault that matches this launch (counting it)."""
        with self.lock:
            for fault in self.faults:
                if fault.remaining > 0 and fault.matches(subnet, instance_type):
                    fault.remaining -= 1
                    self.faults[:] = [f for f in self.faults if f.remaining > 0]
                    break
            else:
                return
        where = f" in the Availability Zone of subnet {subnet}" if subnet else ""
        raise LaunchRefused(
            fault.code,
            f"We currently do not have sufficient {instance_type} capacity{where}. Our system "
            "will be working on provisioning additional capacity. (injected by the sandbox)",
            LAUNCH_ERRORS[fault.code],
        )


def post(endpoint: str, ec2: dict[str, Any], timeout: float = 30.0) -> dict[str, Any]:
    """Sends one EC2 request to the sandbox's admin call; raises ValueError with its message
    when the sandbox refuses it."""
    body = json.dumps({"reconcilerSandbox": {"ec2": ec2}}).encode()
    req = urllib.request.Request(
        f"{endpoint.rstrip('/')}/moto-api/config",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as reply:
            return dict(json.loads(reply.read() or b"{}"))
    except urllib.error.HTTPError as err:
        raise ValueError(err.read().decode("utf-8", "replace")) from None


def fail_launches(
    endpoint: str,
    count: int = 1,
    *,
    code: str = CAPACITY,
    subnet: str | None = None,
    instance_type: str | None = None,
) -> None:
    spec = {"count": count, "code": code, "subnet": subnet, "instanceType": instance_type}
    post(endpoint, {"failLaunches": spec})


def kill_instance(endpoint: str, instance_id: str, cause: str = SPOT_INTERRUPTION) -> None:
    post(endpoint, {"kill": {"instanceId": instance_id, "cause": cause}})
