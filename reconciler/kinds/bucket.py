"""Bucket: its S3 calls and mapping.

AWS quirks handled here:
- S3 has no batch describe: a bucket is HeadBucket plus one GET per sub-resource (tags,
  versioning, encryption, public access block, lifecycle). Only the declared names are read,
  concurrently; with `everything` (--prune) the stack's buckets are found by their tags through
  the tagging API (one paginated call, instead of ListBuckets and a GetBucketTagging for every
  bucket of the account).
- An unset sub-resource is an error code, not an empty answer (NoSuchTagSet,
  NoSuchLifecycleConfiguration, ServerSideEncryptionConfigurationNotFoundError,
  NoSuchPublicAccessBlockConfiguration): each means "unset".
- Bucket names are global across accounts: HeadBucket answers 403 for a bucket another
  account owns. That is not ours to adopt: the plan refuses it, whatever --adopt says.
- Every Put* replaces its whole sub-resource (PutBucketTagging the whole tag set), so an update
  sends the whole sub-resource of each changed path, and nothing for the others.
- Buckets hold data: the model's default deletion policy is Retain (the engine honours it for
  every kind; `delete` here runs only for `deletionPolicy: Delete`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from reconciler.aws.lookups import partition_of
from reconciler.aws.tags import MANAGED_BY, STACK, TOOL, Owner, owner_of, user_tags
from reconciler.engine.context import Context
from reconciler.engine.diff import Change
from reconciler.engine.refs import Refs
from reconciler.engine.types import Observed, Pending, Step, Work
from reconciler.errors import ProviderError
from reconciler.kinds.base import Column, Kind, Permission, desired_tags, spec_dict
from reconciler.models.bucket import NAME_SUFFIX, Bucket, BucketSpec

COUNT_BOUND = 1000  # objects counted in a plan: one ListObjectsV2 page; beyond, "1000+"
FOREIGN = "FOREIGN"  # the status of a bucket another AWS account owns
READERS = 8  # buckets read at once
# The codes S3 answers with for a sub-resource that was never set.
UNSET = frozenset(
    {
        "NoSuchTagSet",
        "NoSuchLifecycleConfiguration",
        "ServerSideEncryptionConfigurationNotFoundError",
        "NoSuchPublicAccessBlockConfiguration",
    }
)
PAB_KEYS = {  # ours -> S3's
    "blockPublicAcls": "BlockPublicAcls",
    "ignorePublicAcls": "IgnorePublicAcls",
    "blockPublicPolicy": "BlockPublicPolicy",
    "restrictPublicBuckets": "RestrictPublicBuckets",
}


def _arn(name: str) -> str:
    return f"arn:aws:s3:::{name}"


def _unset(call: Callable[[], dict[str, Any]]) -> dict[str, Any] | None:
    """The answer of a sub-resource GET, or None when S3 says it was never set. (Called with a
    lambda, not a bound method: the IAM policy's scan sees only calls written out.)"""
    try:
        out: dict[str, Any] = call()
        return out
    except ProviderError as exc:
        if exc.code in UNSET:
            return None
        raise


def _rule_from_aws(raw: dict[str, Any]) -> dict[str, Any]:
    # The prefix is in Filter.Prefix, or at the top level in rules written with the older API;
    # an empty prefix means every key.
    prefix = (raw.get("Filter") or {}).get("Prefix") or raw.get("Prefix") or None
    rule: dict[str, Any] = {"id": raw.get("ID", ""), "enabled": raw.get("Status") == "Enabled"}
    if prefix:
        rule["prefix"] = prefix
    days = (raw.get("Expiration") or {}).get("Days")
    if days is not None:
        rule["expirationDays"] = days
    abort = (raw.get("AbortIncompleteMultipartUpload") or {}).get("DaysAfterInitiation")
    if abort is not None:
        rule["abortIncompleteMultipartUploadDays"] = abort
    return rule


def _rule_to_aws(rule: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "ID": rule["id"],
        "Status": "Enabled" if rule.get("enabled", True) else "Disabled",
        "Filter": {"Prefix": rule.get("prefix", "")},
    }
    if rule.get("expirationDays") is not None:
        out["Expiration"] = {"Days": rule["expirationDays"]}
    if rule.get("abortIncompleteMultipartUploadDays") is not None:
        out["AbortIncompleteMultipartUpload"] = {
            "DaysAfterInitiation": rule["abortIncompleteMultipartUploadDays"]
        }
    return out


def _encryption_to_aws(enc: dict[str, Any]) -> dict[str, Any]:
    default: dict[str, Any] = {"SSEAlgorithm": enc.get("sseAlgorithm", "AES256")}
    if enc.get("kmsKeyId"):
        default["KMSMasterKeyID"] = enc["kmsKeyId"]
    return {"Rules": [{"ApplyServerSideEncryptionByDefault": default}]}


def _put(ctx: Context, name: str, path: str, desired: dict[str, Any]) -> None:
    """Sends one sub-resource whole, as S3 takes it."""
    s3 = ctx.aws.client("s3")
    if path == "tags":
        tagset = [{"Key": k, "Value": v} for k, v in sorted(desired["tags"].items())]
        s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": tagset})
    elif path == "versioning" and desired.get("versioning"):
        s3.put_bucket_versioning(
            Bucket=name, VersioningConfiguration={"Status": desired["versioning"]}
        )
    elif path == "encryption":
        s3.put_bucket_encryption(
            Bucket=name,
            ServerSideEncryptionConfiguration=_encryption_to_aws(desired["encryption"]),
        )
    elif path == "publicAccessBlock":
        pab = desired["publicAccessBlock"]
        s3.put_public_access_block(
            Bucket=name,
            PublicAccessBlockConfiguration={aws: bool(pab[ours]) for ours, aws in PAB_KEYS.items()},
        )
    elif path == "lifecycleRules":
        rules = desired.get("lifecycleRules") or []
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name,
                LifecycleConfiguration={"Rules": [_rule_to_aws(r) for r in rules]},
            )
        else:
            # S3 rejects a lifecycle configuration without rules: no rules is a delete.
            s3.delete_bucket_lifecycle(Bucket=name)


SUB_RESOURCES = ("tags", "publicAccessBlock", "encryption", "versioning", "lifecycleRules")


class BucketKind(Kind):
    model = Bucket
    spec_model = BucketSpec
    busy_statuses = ()
    ready_statuses = ("ACTIVE",)
    columns = (
        Column("AWS Name", "awsName", description="The bucket name."),
        Column("Versioning", "versioning", description="Enabled, Suspended, or never enabled."),
        Column("Encryption", "encryption", description="Default server-side encryption."),
        Column("Deletion", "deletionPolicy", description="Retain or Delete.", priority=1),
    )
    permissions = (
        Permission(
            "S3Buckets",
            "s3",
            (
                "CreateBucket",
                "DeleteBucket",
                "ListBucket",
                "ListBucketVersions",
                "GetBucketTagging",
                "PutBucketTagging",
                "GetBucketVersioning",
                "PutBucketVersioning",
                "GetEncryptionConfiguration",
                "PutEncryptionConfiguration",
                "GetBucketPublicAccessBlock",
                "PutBucketPublicAccessBlock",
                "GetLifecycleConfiguration",
                "PutLifecycleConfiguration",
            ),
            ("arn:{partition}:s3:::*",),
        ),
        # Emptying a bucket before deleting it (--force): every version of every object.
        Permission("S3Objects", "s3", ("DeleteObjectVersion",), ("arn:{partition}:s3:::*/*",)),
    )

    # -- reading -----------------------------------------------------------------------------

    def observe(self, ctx: Context, declared: list[Any], everything: bool) -> list[Observed]:
        names = {self.aws_name(ctx, r) for r in declared}
        # A derived name is ours alone (it hashes this account and stack): such a bucket with
        # no tags at all is a create of ours that was interrupted before it was tagged.
        derived = {self.aws_name(ctx, r): r.name for r in declared if r.spec.namePrefix}
        if everything:
            pages = ctx.aws.client("resourcegroupstaggingapi").get_paginator("get_resources")
            filters = [
                {"Key": MANAGED_BY, "Values": [TOOL]},
                {"Key": STACK, "Values": [ctx.stack]},
            ]
            for page in pages.paginate(TagFilters=filters, ResourceTypeFilters=["s3"]):
                for item in page.get("ResourceTagMappingList") or []:
                    names.add(item["ResourceARN"].rsplit(":", 1)[-1])
        if not names:
            return []
        with ThreadPoolExecutor(max_workers=min(READERS, len(names))) as pool:
            found = list(pool.map(lambda n: self._read(ctx, n, derived.get(n)), sorted(names)))
        return [o for o in found if o is not None]

    def _read(self, ctx: Context, name: str, derived_for: str | None = None) -> Observed | None:
        s3 = ctx.aws.client("s3")
        try:
            s3.head_bucket(Bucket=name)
        except ProviderError as exc:
            # HEAD has no body: the error code is the HTTP status.
            if exc.code in ("404", "NoSuchBucket"):
                return None
            if exc.code in ("403", "AccessDenied", "Forbidden"):
                # The name is taken by another AWS account (bucket names are global).
                ctx.shared(f"{self.name}:foreign", set).add(name)
                return Observed(
                    kind=self.name,
                    aws_name=name,
                    arn=_arn(name),
                    spec={},
                    owner=None,
                    status=FOREIGN,
                    status_reason="the name belongs to a bucket of another AWS account",
                )
            raise
        tagging = _unset(lambda: s3.get_bucket_tagging(Bucket=name)) or {}
        tags = {t["Key"]: t["Value"] for t in tagging.get("TagSet") or []}
        # Status is absent from the answer until versioning was first enabled.
        versioning = s3.get_bucket_versioning(Bucket=name).get("Status")
        enc = _unset(lambda: s3.get_bucket_encryption(Bucket=name))
        encryption = None
        if enc:
            rules = enc["ServerSideEncryptionConfiguration"].get("Rules") or [{}]
            default = rules[0].get("ApplyServerSideEncryptionByDefault") or {}
            encryption = {"sseAlgorithm": default.get("SSEAlgorithm")}
            if default.get("KMSMasterKeyID"):
                encryption["kmsKeyId"] = default["KMSMasterKeyID"]
        pab_raw = _unset(lambda: s3.get_public_access_block(Bucket=name))
        # No public access block configuration blocks nothing.
        pab_cfg = (pab_raw or {}).get("PublicAccessBlockConfiguration") or {}
        pab = {ours: bool(pab_cfg.get(aws, False)) for ours, aws in PAB_KEYS.items()}
        lifecycle = _unset(lambda: s3.get_bucket_lifecycle_configuration(Bucket=name)) or {}
        return Observed(
            kind=self.name,
            aws_name=name,
            arn=_arn(name),
            spec={
                "tags": user_tags(tags),
                "versioning": versioning,
                "encryption": encryption,
                "publicAccessBlock": pab,
                "lifecycleRules": [_rule_from_aws(r) for r in lifecycle.get("Rules") or []],
            },
            owner=owner_of(tags)
            or (Owner(ctx.stack, derived_for) if derived_for and not user_tags(tags) else None),
            status="ACTIVE",  # S3 reports no status: a bucket that answers exists
        )

    def aws_name(self, ctx: Context, res: Bucket) -> str:
        prefix = res.spec.namePrefix
        if not prefix:
            return res.name
        seed = f"{ctx.resolver.account_id}/{ctx.aws.region}/{ctx.stack}/{res.name}"
        return prefix + hashlib.sha256(seed.encode()).hexdigest()[:NAME_SUFFIX]

    def matches_name(self, live: Observed, name: str) -> bool:
        # Another account's bucket is no conflict to --adopt: `create` refuses the name.
        return live.status != FOREIGN and live.aws_name == name

    def desired(self, ctx: Context, res: Bucket, refs: Refs) -> dict[str, Any]:
        spec = spec_dict(res)
        spec["tags"] = desired_tags(res, ctx.stack, spec.get("tags"))
        return spec

    def output(self, ctx: Context, refs: Refs, name: str, what: str) -> str:
        """The bucket's name, `s3://NAME` (url) or ARN, for jobs and policies of the stack."""
        aws_name = refs.aws_name(self.name, name)
        if what == "url":
            return f"s3://{aws_name}"
        if what == "arn":
            return f"arn:{partition_of(ctx.aws.region)}:s3:::{aws_name}"
        return aws_name

    # -- carrying out ------------------------------------------------------------------------

    def create(
        self, ctx: Context, res: Bucket, desired: dict[str, Any], aws_name: str, refs: Refs
    ) -> Work:
        foreign = ctx.shared(f"{self.name}:foreign", set)
        if aws_name in foreign:
            return Work(
                refused=f"the name {aws_name} belongs to a bucket of another AWS account "
                "(S3 bucket names are global): it cannot be created or adopted; choose "
                "another name"
            )

        def run(c: Context) -> str:
            s3 = c.aws.client("s3")
            # us-east-1 rejects a LocationConstraint naming itself; every other region needs it.
            where = (
                {}
                if c.aws.region == "us-east-1"
                else {"CreateBucketConfiguration": {"LocationConstraint": c.aws.region}}
            )
            s3.create_bucket(Bucket=aws_name, **where)
            # Tags first: a bucket left half-made by a failure after this is still ours.
            for path in SUB_RESOURCES:
                _put(c, aws_name, path, desired)
            return f"{aws_name} created"

        return Work(run=run)

    def update(
        self,
        ctx: Context,
        res: Bucket,
        current: Observed,
        desired: dict[str, Any],
        changes: list[Change],
        refs: Refs,
    ) -> Work:
        changed = {c.path.split(".", 1)[0].split("[", 1)[0] for c in changes}
        paths = [p for p in SUB_RESOURCES if p in changed]

        def run(c: Context) -> str:
            for path in paths:
                _put(c, current.aws_name, path, desired)
            return f"{current.aws_name} updated"

        return Work(run=run, summary=", ".join(paths))

    def delete(self, ctx: Context, live: Observed, why: str) -> Work:
        name = live.aws_name
        count = self._count(ctx, live)
        force = ctx.options.force
        if count and not force:
            return Work(
                refused=f"{name} holds {count} objects: deleting it would destroy them; "
                "empty it first, or use --force (deletes every object version, then the bucket)",
                aws_name=name,
            )
        deleted = 0

        def step(c: Context) -> Step:
            nonlocal deleted
            s3 = c.aws.client("s3")
            if force:
                # Versions and delete markers both keep a bucket from being deleted; listing
                # versions also works for a bucket that was never versioned.
                page = s3.list_object_versions(Bucket=name, MaxKeys=1000)
                items = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in (page.get("Versions") or []) + (page.get("DeleteMarkers") or [])
                ]
                if items:
                    out = s3.delete_objects(Bucket=name, Delete={"Objects": items, "Quiet": True})
                    # DeleteObjects answers 200 even when some keys could not be deleted.
                    if out.get("Errors"):
                        first = out["Errors"][0]
                        raise ProviderError(
                            f"DeleteObjects: {first.get('Code')}: {first.get('Message')}",
                            code=str(first.get("Code") or ""),
                            operation="DeleteObjects",
                        )
                    deleted += len(items)
                    return Pending(f"emptying {name}: {deleted} deleted", step, delay=0.0)
            s3.delete_bucket(Bucket=name)
            return f"{name} deleted" + (f" ({deleted} object versions first)" if deleted else "")

        summary = f"{why}; empties it first ({count} objects)" if count else why
        return Work(run=step, summary=summary, aws_name=name)

    def _count(self, ctx: Context, live: Observed) -> str:
        """How many objects the bucket holds, cheaply: one page, "1000+" beyond it; "" if
        none. Versions count for a bucket that was ever versioned (they block DeleteBucket)."""
        s3 = ctx.aws.client("s3")
        out = s3.list_objects_v2(Bucket=live.aws_name, MaxKeys=COUNT_BOUND)
        count, more = int(out.get("KeyCount") or 0), bool(out.get("IsTruncated"))
        if not count and live.spec.get("versioning"):
            page = s3.list_object_versions(Bucket=live.aws_name, MaxKeys=COUNT_BOUND)
            count = len(page.get("Versions") or []) + len(page.get("DeleteMarkers") or [])
            more = bool(page.get("IsTruncated"))
        if not count:
            return ""
        return f"{count}+" if more else str(count)

    # -- reporting ---------------------------------------------------------------------------

    def status_fields(self, res: Any, live: Observed | None) -> dict[str, Any]:
        out = super().status_fields(res, live)
        spec = live.spec if live else {}
        out["versioning"] = spec.get("versioning") if live else None
        out["encryption"] = (spec.get("encryption") or {}).get("sseAlgorithm") if live else None
        known = live is not None and live.status != FOREIGN
        out["deletionPolicy"] = self.deletion_policy(res, live) if known else None
        return out


KINDS = (BucketKind(),)
