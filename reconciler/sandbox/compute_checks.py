"""What CreateComputeEnvironment refuses, and what leaves a new environment INVALID, as in AWS.

AWS Batch checks a request in two steps. The API refuses what is malformed (a missing
`maxvCpus`, an unknown type, a subnet or security group that does not exist, ...). What it can
only find out by building the environment (a service role it cannot assume, an instance
profile, AMI or launch template that does not exist) does not fail the call: the environment
is created, and DescribeComputeEnvironments shows it `INVALID` with a `statusReason`.

moto mixes the two up: it refuses a missing instance profile or service role, accepts an AMI
or launch template that does not exist as VALID, refuses a missing `minvCpus` (AWS: 0) and
answers HTTP 500 (a KeyError on `computeResources["securityGroupIds"]`) when no security group
is given, which AWS accepts for EC2 and SPOT. `reconciler.sandbox.resource_patches` creates
environments with these functions instead of moto's checks. They read the IAM and EC2 state of
the same moto account (what `reconciler.sandbox.seed` put there, and what clients created).
Nothing here keeps state.
"""

from __future__ import annotations

from typing import Any

from moto.batch.exceptions import ClientException, InvalidParameterValueException
from moto.batch.models import COMPUTE_ENVIRONMENT_NAME_REGEX
from moto.ec2.exceptions import InvalidSubnetIdError
from moto.ec2.models.instance_types import INSTANCE_FAMILIES, INSTANCE_TYPES
from moto.iam.exceptions import NotFoundException
from moto.utilities.utils import get_partition

FARGATE = ("FARGATE", "FARGATE_SPOT")
RESOURCE_TYPES = ("EC2", "SPOT", *FARGATE)
REQUIRED = "Error executing request, Exception : {} is required."  # AWS's (and moto's) wording


def is_fargate(resources: dict[str, Any] | None) -> bool:
    """Fargate resources have no instances: no instance role, AMI, launch template or minvCpus."""
    return str((resources or {}).get("type")) in FARGATE


def role_arn(backend: Any, ref: str) -> str:
    """serviceRole as AWS reads it: an ARN, else a role name (with its path, if not "/")."""
    if ref.startswith("arn:"):
        return ref
    partition = get_partition(backend.region_name)
    return f"arn:{partition}:iam::{backend.account_id}:role/{ref.lstrip('/')}"


# --- what the API refuses -------------------------------------------------------------------


def check_request(
    backend: Any, name: str, env_type: str, state: str | None, resources: dict[str, Any] | None
) -> None:
    """Raises the error AWS's CreateComputeEnvironment answers a malformed request with."""
    if COMPUTE_ENVIRONMENT_NAME_REGEX.match(name or "") is None:
        raise InvalidParameterValueException(
            "Compute environment name does not match ^[A-Za-z0-9][A-Za-z0-9_-]{1,126}[A-Za-z0-9]$"
        )
    if backend.get_compute_environment_by_name(name) is not None:
        raise InvalidParameterValueException(
            f"A compute environment already exists with the name {name}"
        )
    if env_type not in ("MANAGED", "UNMANAGED"):
        raise InvalidParameterValueException(f"type {env_type} must be one of MANAGED | UNMANAGED")
    if state is not None and state not in ("ENABLED", "DISABLED"):
        raise InvalidParameterValueException(f"state {state} must be one of ENABLED | DISABLED")
    if resources is None:
        if env_type == "MANAGED":
            raise InvalidParameterValueException(
                "computeResources must be specified when creating a MANAGED environment"
            )
        return
    _check_resources(backend, resources)


def _check_resources(backend: Any, cr: dict[str, Any]) -> None:
    if cr.get("type") not in RESOURCE_TYPES:
        raise InvalidParameterValueException(
            "computeResources.type must be either EC2 | SPOT | FARGATE | FARGATE_SPOT"
        )
    if cr.get("maxvCpus") is None:
        raise ClientException(REQUIRED.format("Resource maxvCpus"))
    if int(cr["maxvCpus"]) < 0:
        raise InvalidParameterValueException("maxVCpus must be positive")
    if not is_fargate(cr):
        if not cr.get("instanceRole"):
            raise ClientException(REQUIRED.format("Instance role"))
        # AWS: minvCpus is optional and defaults to 0 (moto requires it).
        minimum = int(cr.get("minvCpus") or 0)
        if minimum < 0:
            raise InvalidParameterValueException("minvCpus must be positive")
        if int(cr["maxvCpus"]) < minimum:
            raise InvalidParameterValueException("maxVCpus must be greater than minvCpus")
        types = cr.get("instanceTypes") or []
        if not types:
            raise InvalidParameterValueException("At least 1 instance type must be provided")
        for instance_type in types:
            if instance_type != "optimal" and instance_type not in {
                *INSTANCE_TYPES,
                *INSTANCE_FAMILIES,
            }:
                raise InvalidParameterValueException(
                    f"Instance type {instance_type} does not exist"
                )
        template = cr.get("launchTemplate") or {}
        if template.get("launchTemplateId") and template.get("launchTemplateName"):
            raise ClientException(
                "Error executing request, Exception : Specify either launchTemplateId or "
                "launchTemplateName, not both."
            )
    groups = cr.get("securityGroupIds") or []
    for group in groups:
        if backend.ec2_backend.get_security_group_from_id(group) is None:
            raise InvalidParameterValueException(f"security group {group} does not exist")
    # AWS: security groups are required on Fargate only; an EC2 or SPOT environment without
    # them is accepted (moto answers HTTP 500, a KeyError on securityGroupIds).
    if not groups and is_fargate(cr):
        raise ClientException(
            "Error executing request, Exception : At least 1 security group is required for "
            "Fargate resources."
        )
    subnets = cr.get("subnets") or []
    if not subnets:
        raise InvalidParameterValueException("At least 1 subnet must be provided")
    for subnet in subnets:
        try:
            backend.ec2_backend.get_subnet(subnet)
        except InvalidSubnetIdError:
            raise InvalidParameterValueException(f"subnet {subnet} does not exist") from None


def with_defaults(resources: dict[str, Any] | None) -> dict[str, Any] | None:
    """The computeResources AWS stores: minvCpus defaults to 0 (not on Fargate)."""
    if resources is None or is_fargate(resources):
        return resources
    return {"minvCpus": 0, **resources}


# --- what leaves the environment INVALID ----------------------------------------------------


def invalid_reason(backend: Any, service_role: str, resources: dict[str, Any] | None) -> str | None:
    """AWS's statusReason for an environment it cannot build, or None if it can build it.

    AWS tells one reason at a time: the first of service role, instance profile, launch
    template and AMIs that is missing.
    """
    problem = _missing_role(backend, service_role)
    if problem is None and resources is not None and not is_fargate(resources):
        problem = (
            _missing_profile(backend, str(resources.get("instanceRole") or ""))
            or _missing_template(backend, resources.get("launchTemplate"))
            or _missing_images(backend, resources)
        )
    return None if problem is None else f"CLIENT_ERROR - {problem}"


def _missing_role(backend: Any, service_role: str) -> str | None:
    try:
        backend.iam_backend.get_role_by_arn(service_role)
        return None
    except NotFoundException:
        # AWS: Batch's words when it cannot assume the role, as with a role that does not
        # exist (moto refuses the call).
        return (
            f"User: batch.amazonaws.com is not authorized to perform: sts:AssumeRole on "
            f"resource: {service_role} (the service role does not exist)"
        )


def _missing_profile(backend: Any, ref: str) -> str | None:
    # AWS: instanceRole is an instance profile's name or ARN (a role's ARN is a common mistake);
    # Batch's words when it is not one (moto refuses the call).
    name = ref.rsplit("/", 1)[-1]
    for profile in backend.iam_backend.get_instance_profiles():
        if profile.arn == ref or (not ref.startswith("arn:") and profile.name == name):
            return None
    return f"Invalid IamInstanceProfile: {ref} (the instance profile does not exist)"


def _missing_template(backend: Any, spec: dict[str, Any] | None) -> str | None:
    if not spec:
        return None
    ec2 = backend.ec2_backend
    template_id, name = spec.get("launchTemplateId"), spec.get("launchTemplateName")
    template = ec2.launch_templates.get(template_id) if template_id else None
    if template is None and name and name in ec2.launch_template_name_to_ids:
        template = ec2.launch_templates.get(ec2.launch_template_name_to_ids[name])
    if template is None:  # AWS: EC2's words, which Batch passes on (moto: VALID)
        which = f"template ID {template_id}" if template_id else f"template name {name}"
        return f"The specified launch template, with {which}, does not exist."
    version = str(spec.get("version") or "$Default")
    if version.lower() not in ("$default", "$latest") and not (
        version.isdigit() and 1 <= int(version) <= len(template.versions)
    ):
        return (
            f"Could not find the specified version {version} for the launch template with "
            f"ID {template.id}."
        )
    return None


def _missing_images(backend: Any, resources: dict[str, Any]) -> str | None:
    images = [resources.get("imageId")] + [
        c.get("imageIdOverride") for c in resources.get("ec2Configuration") or []
    ]
    for image in images:
        if image and image not in backend.ec2_backend.amis:  # AWS: EC2's words (moto: VALID)
            return f"The image id '[{image}]' does not exist"
    return None
