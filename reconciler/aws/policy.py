"""The least-privilege AWS IAM policy the reconciler needs, derived from the code itself.

`scan()` reads the source of the `reconciler` package (the sandbox aside) with `ast` and finds
every AWS API call it makes: `X.client("svc").op(...)`, `X.client("svc").get_paginator("op")`,
and the same through a name bound to a client (`batch = ctx.aws.client("batch")`). botocore's
service models map each method to its operation, hence to its IAM action. `policy()` groups the
actions by service into statements scoped to the narrowest resources AWS supports for them, and
adds what no call shows: `iam:PassRole` for the roles handed to Batch, and
`iam:CreateServiceLinkedRole` for the roles Batch needs on first use.
"""

from __future__ import annotations

import ast
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from botocore import xform_name
from botocore.session import get_session

import reconciler
from reconciler.registry import kinds

PACKAGE = Path(reconciler.__file__).resolve().parent
# The embedded moto sandbox never talks to AWS; aws/slack_function.py runs in Lambda, as the
# function's own role.
# Code that runs with other credentials than the CLI's: the sandbox, the Slack function (its
# Lambda role) and the EC2 tasks' agent (the instance profile, see the README).
EXCLUDED = ("sandbox", "aws/slack_function.py", "agent/exec.py")

# Calls on a client that are not API operations.
NOT_OPERATIONS = frozenset(
    {"can_paginate", "close", "generate_presigned_url", "generate_presigned_post", "get_waiter"}
)
# Calls the scan cannot see: made on a client handed to an object (agent/receiver.py follows a
# run's queue with the client the run's driver gives it).
# And what a call needs beyond its own action: RunInstances with TagSpecifications is also
# authorised as ec2:CreateTags.
INDIRECT = frozenset({"sqs:ReceiveMessage", "sqs:DeleteMessage", "ec2:CreateTags"})
MANAGED_POLICY_MAX = 6144  # characters, whitespace left out [IAM quotas]
# Operations that need no permission (AWS answers GetCallerIdentity for every principal).
NO_PERMISSION = frozenset({"sts:GetCallerIdentity"})

# Batch actions that support resource-level permissions are scoped by the kinds that make the
# calls (`Kind.permissions`); tags are every kind's (kinds/base.py). Describe*/List* support
# none: they take "*". A write call the scan finds that no kind scopes is an error, so a new
# call gets a deliberate scope instead of a silent "*".
_TAGS = ("BatchTags", ("compute-environment/*", "job-queue/*", "job-definition/*", "job/*"))


def _batch_scopes() -> dict[str, tuple[str, tuple[str, ...]]]:
    """Batch action -> (statement, resources), from the kinds' declared permissions."""
    resources: dict[str, list[str]] = {}
    sid_of: dict[str, str] = {"TagResource": _TAGS[0], "UntagResource": _TAGS[0]}
    for kind in kinds().values():
        for p in kind.permissions:
            if p.service != "batch":
                continue
            for action in p.actions:
                sid_of[action] = p.sid
            found = resources.setdefault(p.sid, [])
            found += [r for r in p.resources if r not in found]
    resources[_TAGS[0]] = list(_TAGS[1])
    order = ("compute-environment/*", "job-queue/*", "job-definition/*", "job/*")

    def rank(arn: str) -> int:
        return order.index(arn) if arn in order else len(order)

    return {a: (sid, tuple(sorted(resources[sid], key=rank))) for a, sid in sid_of.items()}


LOG_GROUP = "/aws/batch/job"  # where Batch jobs log by default (reconciler.runs.logs)
# Services whose service-linked roles Batch needs: its own, and those of the services it drives.
SERVICE_LINKED = (
    "batch.amazonaws.com",
    "ecs.amazonaws.com",
    "spot.amazonaws.com",
    "spotfleet.amazonaws.com",
)
# Fields of the models that name an IAM role (or an instance profile) passed to Batch.
ROLE_FIELDS = frozenset(
    {"serviceRole", "instanceRole", "spotIamFleetRole", "jobRoleArn", "executionRoleArn", "role"}
)


@dataclass(frozen=True, order=True)
class Call:
    service: str  # boto3 service name: "batch"
    method: str  # boto3 method or paginator name: "describe_job_queues"
    where: str  # "reconciler/kinds/job_queue.py:32"

    @property
    def action(self) -> str:
        return action_of(self.service, self.method)


@cache
def _operations(service: str) -> dict[str, str]:
    model = get_session().get_service_model(service)
    return {xform_name(op): op for op in model.operation_names}


# Services whose IAM prefix is not their signing name.
IAM_PREFIXES = {"resourcegroupstaggingapi": "tag"}
# Operations whose IAM action is not named after them (S3 authorises most calls on a bucket's
# sub-resources, and HeadBucket and the listings, under other names).
IAM_ACTIONS = {
    "s3:HeadBucket": "s3:ListBucket",
    "s3:ListObjectsV2": "s3:ListBucket",
    "s3:ListObjectVersions": "s3:ListBucketVersions",
    "s3:GetBucketEncryption": "s3:GetEncryptionConfiguration",
    "s3:PutBucketEncryption": "s3:PutEncryptionConfiguration",
    "s3:GetPublicAccessBlock": "s3:GetBucketPublicAccessBlock",
    "s3:PutPublicAccessBlock": "s3:PutBucketPublicAccessBlock",
    "s3:GetBucketLifecycleConfiguration": "s3:GetLifecycleConfiguration",
    "s3:PutBucketLifecycleConfiguration": "s3:PutLifecycleConfiguration",
    "s3:DeleteBucketLifecycle": "s3:PutLifecycleConfiguration",
    "s3:DeleteObjects": "s3:DeleteObjectVersion",  # always called with a VersionId
    "s3:HeadObject": "s3:GetObject",
    "sqs:DeleteMessageBatch": "sqs:DeleteMessage",
}


@cache
def _prefix(service: str) -> str:
    return IAM_PREFIXES.get(service) or get_session().get_service_model(service).signing_name


def action_of(service: str, method: str) -> str:
    """IAM action of a boto3 method: ("batch", "describe_job_queues") -> batch:DescribeJobQueues."""
    ops = _operations(service)
    if method not in ops:
        raise ValueError(f"{service}.{method} is not an operation of {service}")
    action = f"{_prefix(service)}:{ops[method]}"
    return IAM_ACTIONS.get(action, action)


def _client_service(node: ast.AST) -> str | None:
    """The service name if `node` is `<anything>.client("svc", ...)` or `client("svc")`."""
    if not isinstance(node, ast.Call) or not node.args:
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    if name == "client" and isinstance(first, ast.Constant) and isinstance(first.value, str):
        return first.value
    return None


def _units(tree: ast.Module) -> Iterator[ast.AST]:
    """The module's outermost functions (methods included); nested ones belong to them."""
    stack: list[ast.AST] = [tree]
    while stack:
        node = stack.pop()
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                yield child
            else:
                stack.append(child)


def _bindings(node: ast.AST) -> dict[str, str]:
    """Names (and attributes) bound to a client anywhere in `node`.

    `batch = ctx.aws.client("batch")` binds "batch"; `self._ec2 = aws.client("ec2")` binds
    "self._ec2". Scopes are approximate: a whole outermost function, nested ones included.
    """
    found: dict[str, str] = {}
    for sub in ast.walk(node):
        if isinstance(sub, ast.Assign | ast.AnnAssign | ast.NamedExpr):
            value = sub.value
            targets = sub.targets if isinstance(sub, ast.Assign) else [sub.target]
            service = _client_service(value) if value is not None else None
            for target in targets:
                if service and isinstance(target, ast.Name | ast.Attribute):
                    found[ast.unparse(target)] = service
    return found


def _calls_in(node: ast.AST, env: dict[str, str], rel: str) -> Iterator[Call]:
    for sub in ast.walk(node):
        if not isinstance(sub, ast.Call) or not isinstance(sub.func, ast.Attribute):
            continue
        receiver = sub.func.value
        service = _client_service(receiver)
        if service is None and isinstance(receiver, ast.Name | ast.Attribute):
            service = env.get(ast.unparse(receiver))
        if service is None:
            continue
        method = sub.func.attr
        if method == "get_paginator":
            arg = sub.args[0] if sub.args else None
            if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
                raise ValueError(f"{rel}:{sub.lineno}: get_paginator with a non-literal name")
            method = arg.value
        elif method in NOT_OPERATIONS:
            continue
        yield Call(service, method, f"{rel}:{sub.lineno}")


def scan(root: Path = PACKAGE) -> list[Call]:
    """Every AWS API call the package makes, sorted, one entry per call site."""
    calls: set[Call] = set()
    for path in sorted(root.rglob("*.py")):
        rel_parts = path.relative_to(root).parts
        if rel_parts[0] in EXCLUDED or "/".join(rel_parts) in EXCLUDED:
            continue
        rel = "/".join((root.name, *rel_parts))
        tree = ast.parse(path.read_text(), filename=str(path))
        module_env = {
            k: v
            for stmt in tree.body
            if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            for k, v in _bindings(stmt).items()
        }
        for unit in _units(tree):
            calls.update(_calls_in(unit, {**module_env, **_bindings(unit)}, rel))
        for stmt in tree.body:  # module-level code outside any function
            if not isinstance(stmt, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                calls.update(_calls_in(stmt, module_env, rel))
    return sorted(calls)


def scanned_actions(root: Path = PACKAGE) -> set[str]:
    """The IAM actions of the calls `scan()` finds, those that need no permission left out."""
    return ({c.action for c in scan(root)} | INDIRECT) - NO_PERMISSION


def _arn(partition: str, service: str, resource: str, region: str = "*", account: str = "*") -> str:
    return f"arn:{partition}:{service}:{region}:{account}:{resource}"


def _role_arns(roles: Iterable[str] | None, partition: str, account: str) -> list[str]:
    if roles is None:
        return [f"arn:{partition}:iam::{account}:role/*"]
    out = set()
    for ref in roles:
        if ref.startswith("arn:"):
            # An instance profile is passed as the role inside it, conventionally same-named.
            out.add(ref.replace(":instance-profile/", ":role/"))
        else:
            out.add(f"arn:{partition}:iam::{account}:role/{ref}")
    return sorted(out)


def roles_in(resources: Iterable[Any]) -> list[str]:
    """Role names and ARNs that the given manifests (models) pass to Batch."""
    found: set[str] = set()

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            for key, sub in value.items():
                if key in ROLE_FIELDS and isinstance(sub, str):
                    found.add(sub)
                elif key in ROLE_FIELDS and isinstance(sub, dict) and sub.get("role"):
                    # A role of the stack ({role: NAME}): passed by its name; its instance
                    # profile, which names the role after itself, passes that role too.
                    found.add(str(sub["role"]))
                else:
                    walk(sub)
        elif isinstance(value, list):
            for sub in value:
                walk(sub)

    for res in resources:
        walk(res.spec.model_dump(mode="json", exclude_none=True))
    return sorted(found)


def policy(
    roles: Iterable[str] | None = None,
    *,
    partition: str = "aws",
    region: str = "*",
    account: str = "*",
    root: Path = PACKAGE,
) -> dict[str, Any]:
    """The IAM policy document. `roles` narrows iam:PassRole (default: any role)."""
    by_service: dict[str, set[str]] = {}
    for action in scanned_actions(root):
        service, name = action.split(":", 1)
        by_service.setdefault(service, set()).add(name)
    statements: list[dict[str, Any]] = []

    def add(sid: str, actions: Iterable[str], resources: list[str], **extra: Any) -> None:
        acts = sorted(set(actions))
        if acts:
            statements.append(
                {"Sid": sid, "Effect": "Allow", "Action": acts, "Resource": resources, **extra}
            )

    batch = by_service.pop("batch", set())
    unscoped = {a for a in batch if a.startswith(("Describe", "List"))}
    scopes = _batch_scopes()
    unknown = batch - unscoped - set(scopes)
    if unknown:
        raise ValueError(f"no resource scope for batch:{', batch:'.join(sorted(unknown))}")
    # Batch's Describe*/List* support no resource-level permissions: "*" is what AWS requires.
    add("BatchRead", (f"batch:{a}" for a in unscoped), ["*"])
    sids = [s for s in dict.fromkeys(s for s, _ in scopes.values()) if s != _TAGS[0]]
    for sid in [*sids, _TAGS[0]]:
        arns = next(r for s, r in scopes.values() if s == sid)
        add(
            sid,
            (f"batch:{a}" for a in batch - unscoped if scopes[a][0] == sid),
            [_arn(partition, "batch", arn, region, account) for arn in arns],
        )

    ec2 = by_service.pop("ec2", set())
    lookups = {a for a in ec2 if a.startswith("Describe")}
    # EC2 Describe* actions support no resource-level permissions: "*" is what AWS requires.
    add("Ec2Lookups", (f"ec2:{a}" for a in lookups), ["*"])
    if ec2 - lookups:  # launching and ending EC2 tasks' instances: scoped by the kinds
        by_service["ec2"] = ec2 - lookups

    logs = by_service.pop("logs", set())
    add(
        "JobLogs",
        (f"logs:{a}" for a in logs),
        [_arn(partition, "logs", f"log-group:{LOG_GROUP}:log-stream:*", region, account)],
    )

    # iam:PassRole: Batch checks it for the roles a compute environment or a job definition
    # names (serviceRole, instanceRole, spotIamFleetRole, jobRoleArn, executionRoleArn).
    add("PassRolesToBatch", ["iam:PassRole"], _role_arns(roles, partition, account))
    # The first compute environment of an account creates Batch's service-linked role, and
    # Batch's own first use of ECS and Spot may create theirs.
    add(
        "ServiceLinkedRoles",
        ["iam:CreateServiceLinkedRole"],
        [f"arn:{partition}:iam::{account}:role/aws-service-role/*"],
        Condition={"StringEquals": {"iam:AWSServiceName": list(SERVICE_LINKED)}},
    )
    # The stack lock (aws/lock.py): one table, made on first use. Tags given to CreateTable
    # are authorised as dynamodb:TagResource.
    dynamodb = by_service.pop("dynamodb", set())
    if "CreateTable" in dynamodb:
        dynamodb.add("TagResource")
    add(
        "StackLocks",
        (f"dynamodb:{a}" for a in dynamodb),
        [_arn(partition, "dynamodb", "table/reconciler-locks", region, account)],
    )
    # What a stack owns is read by its tags; GetResources supports no resource-level scope.
    add("TaggedReads", (f"tag:{a}" for a in by_service.pop("tag", set())), ["*"])
    # Every other service (IAM for roles, S3 for buckets, ...): the kinds that make the calls
    # declare the actions and their resources (`Kind.permissions`), reads included; a call no
    # kind declares is an error, as for Batch.
    for service in sorted(by_service):
        scanned = by_service[service]
        declared = _declared(service)
        unknown = scanned - {a for _, acts, _ in declared for a in acts}
        if unknown:
            raise ValueError(
                f"no resource scope for {service}:{f', {service}:'.join(sorted(unknown))}"
            )
        for sid, acts, resources in declared:
            arns = [_scoped(service, r, partition, region, account) for r in resources]
            add(sid, (f"{service}:{a}" for a in scanned & acts), arns)
    return {"Version": "2012-10-17", "Statement": statements}


def _declared(service: str) -> list[tuple[str, set[str], list[str]]]:
    """(statement, actions, resources) the kinds declare for a service other than Batch, one
    entry per statement name, in the kinds' order."""
    found: dict[str, tuple[str, set[str], list[str]]] = {}
    for kind in kinds().values():
        for p in kind.permissions:
            if p.service != service:
                continue
            _, acts, resources = found.setdefault(p.sid, (p.sid, set(), []))
            acts.update(p.actions)
            resources += [r for r in p.resources if r not in resources]
    return list(found.values())


def _scoped(service: str, resource: str, partition: str, region: str, account: str) -> str:
    """A declared resource as an ARN: "*" as it is (where AWS supports no resource-level
    permission), a whole ARN with `{partition}`, `{region}` and `{account}` filled in (global
    services: IAM, S3), else a suffix after `arn:PARTITION:SERVICE:REGION:ACCOUNT:`."""
    if resource == "*":
        return resource
    if resource.startswith("arn:"):
        return resource.format(partition=partition, region=region, account=account)
    return _arn(partition, service, resource, region, account)


def actions(doc: dict[str, Any]) -> set[str]:
    """Every action a policy document allows."""
    return {a for s in doc["Statement"] for a in s["Action"]}


def size(doc: dict[str, Any]) -> int:
    """Characters as IAM counts them (whitespace left out)."""
    return len(json.dumps(doc, separators=(",", ":")))


def parts(doc: dict[str, Any], limit: int = MANAGED_POLICY_MAX) -> list[dict[str, Any]]:
    """The document as managed policies of at most `limit` characters each (a user or role
    takes up to 10): its statements, in order, packed greedily."""
    out: list[dict[str, Any]] = []
    current: list[dict[str, Any]] = []
    for statement in doc["Statement"]:
        trial = {"Version": doc["Version"], "Statement": [*current, statement]}
        if current and size(trial) > limit:
            out.append({"Version": doc["Version"], "Statement": current})
            current = [statement]
        else:
            current.append(statement)
    if current:
        out.append({"Version": doc["Version"], "Statement": current})
    return out


def render(doc: dict[str, Any]) -> str:
    """The document as `aws iam create-policy --policy-document` takes it."""
    return json.dumps(doc, indent=2) + "\n"
