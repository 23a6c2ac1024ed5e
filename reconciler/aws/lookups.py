"""Turns lookups and short role names into the IDs and ARNs AWS wants, once per plan.

Results are cached for the life of the Resolver, so a stack whose twenty compute environments
all say `subnets: [{defaultVpc: true}]` costs one DescribeSubnets call, not twenty.
"""

from __future__ import annotations

import threading
from typing import Any

from reconciler.aws.clients import Aws
from reconciler.errors import PlanError


def partition_of(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


class Resolver:
    def __init__(self, aws: Aws):
        self.aws = aws
        self._cache: dict[Any, Any] = {}
        self._lock = threading.Lock()
        self._computing: dict[Any, threading.Lock] = {}

    def _cached(self, key: Any, compute: Any) -> Any:
        """Single-flight: threads asking for one key at once wait for one call, not make one
        each (eight concurrent plans of compute environments made eight GetCallerIdentity)."""
        with self._lock:
            if key in self._cache:
                return self._cache[key]
            lock = self._computing.setdefault(key, threading.Lock())
        with lock:
            with self._lock:
                if key in self._cache:
                    return self._cache[key]
            value = compute()
            with self._lock:
                self._cache[key] = value
            return value

    def once(self, key: Any, compute: Any) -> Any:
        """`compute()` once per key for this plan, single-flight (an image lookup, a bucket)."""
        return self._cached(key, compute)

    def learn_account(self, arn: str) -> None:
        """Takes the account ID from an ARN already read, saving a GetCallerIdentity."""
        parts = arn.split(":")
        if len(parts) > 4 and parts[4].isdigit():
            with self._lock:
                self._cache.setdefault("account", parts[4])

    @property
    def account_id(self) -> str:
        return self._cached(
            "account", lambda: self.aws.client("sts").get_caller_identity()["Account"]
        )

    def _arn(self, kind: str, ref: str) -> str:
        if ref.startswith("arn:"):
            return ref
        return f"arn:{partition_of(self.aws.region)}:iam::{self.account_id}:{kind}/{ref}"

    def role_arn(self, ref: str | None) -> str | None:
        return None if ref is None else self._arn("role", ref)

    def instance_profile_arn(self, ref: str | None) -> str | None:
        return None if ref is None else self._arn("instance-profile", ref)

    def _default_subnets(self) -> list[dict[str, Any]]:
        """The default VPC's default subnets: one call answers both `{defaultVpc}` subnets and,
        through their VpcId, which VPC is the default one."""

        def find() -> list[dict[str, Any]]:
            pages = self.aws.client("ec2").get_paginator("describe_subnets")
            flt = [{"Name": "default-for-az", "Values": ["true"]}]
            return [s for p in pages.paginate(Filters=flt) for s in p["Subnets"]]

        return list(self._cached("default-subnets", find))

    def default_vpc(self) -> str:
        def find() -> str:
            subnets = self._default_subnets()
            if subnets:
                return str(subnets[0]["VpcId"])
            vpcs = (
                self.aws.client("ec2")
                .describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])
                .get("Vpcs")
            )
            if not vpcs:
                raise PlanError("lookup defaultVpc: this account and region have no default VPC")
            return str(vpcs[0]["VpcId"])

        return self._cached("default-vpc", find)

    def _filters(self, lookup: dict[str, Any], name_filter: str) -> list[dict[str, Any]]:
        filters: list[dict[str, Any]] = []
        vpc = lookup.get("vpcId") or (self.default_vpc() if lookup.get("defaultVpc") else None)
        if vpc:
            filters.append({"Name": "vpc-id", "Values": [vpc]})
        for k, v in (lookup.get("tags") or {}).items():
            filters.append({"Name": f"tag:{k}", "Values": [v]})
        if lookup.get("name"):
            filters.append({"Name": name_filter, "Values": [lookup["name"]]})
        return filters

    def subnets(self, refs: list[Any]) -> list[str]:
        out: list[str] = []
        for ref in refs:
            if isinstance(ref, str):
                out.append(ref)
                continue
            key = ("subnets", repr(sorted(ref.items())))

            def find(ref: dict[str, Any] = ref) -> list[str]:
                if set(ref) == {"defaultVpc"} and ref["defaultVpc"]:
                    found = sorted(s["SubnetId"] for s in self._default_subnets())
                    if not found:
                        raise PlanError(f"subnet lookup {ref} matched no subnet")
                    return found
                filters = self._filters(ref, "tag:Name")
                if ref.get("defaultVpc") and not ref.get("tags") and not ref.get("name"):
                    filters.append({"Name": "default-for-az", "Values": ["true"]})
                pages = self.aws.client("ec2").get_paginator("describe_subnets")
                found = [
                    s["SubnetId"] for p in pages.paginate(Filters=filters) for s in p["Subnets"]
                ]
                if not found:
                    raise PlanError(f"subnet lookup {ref} matched no subnet")
                return sorted(found)

            out.extend(self._cached(key, find))
        return sorted(set(out))

    def security_groups(self, refs: list[Any]) -> list[str]:
        out: list[str] = []
        for ref in refs:
            if isinstance(ref, str):
                out.append(ref)
                continue
            key = ("sgs", repr(sorted(ref.items())))

            def find(ref: dict[str, Any] = ref) -> list[str]:
                if ref.get("defaultVpc") and not ref.get("tags") and not ref.get("name"):
                    ref = {**ref, "name": "default"}
                filters = self._filters(ref, "group-name")
                pages = self.aws.client("ec2").get_paginator("describe_security_groups")
                found = [
                    g["GroupId"]
                    for p in pages.paginate(Filters=filters)
                    for g in p["SecurityGroups"]
                ]
                if not found:
                    raise PlanError(f"security group lookup {ref} matched no group")
                return sorted(found)

            out.extend(self._cached(key, find))
        return sorted(set(out))
