"""Bucket: an S3 bucket and the settings a data pipeline relies on (issue #10).

`metadata.name` is the bucket's name, so it follows S3's naming rules, which are narrower than
Batch's (lowercase, dots allowed, 3 to 63 characters). The spec holds the bucket's
sub-resources, each one S3 call: versioning, default encryption, the public access block and
lifecycle rules. `deletionPolicy` is ours: a bucket holds data that no re-apply brings back,
so deleting one from a stack leaves it in AWS unless the manifest says otherwise.
"""

from __future__ import annotations

import re
from typing import Annotated, ClassVar, Literal

from pydantic import Field, model_validator

from reconciler.models.common import DeletionPolicy, Metadata, Resource, Spec, Strict, Tags
from reconciler.models.fields import LATE_INIT, LOCAL, set_by

# S3 bucket names (general purpose buckets): lowercase letters, digits, dots and hyphens,
# beginning and ending with a letter or digit.
BUCKET_NAME = r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$"
IP_FORM = re.compile(r"^\d+\.\d+\.\d+\.\d+$")
# Prefixes and suffixes S3 reserves for its own features (access points, S3 Express, ...).
RESERVED_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
RESERVED_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3")


class BucketMetadata(Metadata):
    """Metadata whose name is an S3 bucket name (global across every AWS account)."""

    name: str = Field(
        min_length=3,
        max_length=63,
        pattern=BUCKET_NAME,
        description="The bucket name: 3-63 lowercase letters, digits, dots and hyphens.",
    )

    @model_validator(mode="after")
    def _s3_rules(self) -> BucketMetadata:
        name = self.name
        if ".." in name:
            raise ValueError("name: a bucket name must not contain two adjacent dots")
        if IP_FORM.match(name):
            raise ValueError("name: a bucket name must not look like an IP address")
        for prefix in RESERVED_PREFIXES:
            if name.startswith(prefix):
                raise ValueError(f"name: the prefix {prefix!r} is reserved by S3")
        for suffix in RESERVED_SUFFIXES:
            if name.endswith(suffix):
                raise ValueError(f"name: the suffix {suffix!r} is reserved by S3")
        return self


class Encryption(Strict):
    """Default server-side encryption (S3 encrypts every new object with it)."""

    sseAlgorithm: Literal["AES256", "aws:kms"] = "AES256"
    # Without a key, aws:kms uses the AWS managed key aws/s3, and S3 reports no key id.
    kmsKeyId: Annotated[str | None, LATE_INIT] = Field(default=None, min_length=1, max_length=2048)

    @model_validator(mode="after")
    def _key_needs_kms(self) -> Encryption:
        if self.kmsKeyId and self.sseAlgorithm != "aws:kms":
            raise ValueError("kmsKeyId is only valid with sseAlgorithm aws:kms")
        return self


class PublicAccessBlock(Strict):
    """The bucket's public access block: every setting on unless turned off on purpose."""

    blockPublicAcls: bool = True
    ignorePublicAcls: bool = True
    blockPublicPolicy: bool = True
    restrictPublicBuckets: bool = True


class LifecycleRule(Strict):
    """Expire objects and abort incomplete multipart uploads after some days."""

    id: str = Field(min_length=1, max_length=255, description="Unique among the rules.")
    enabled: bool = True
    prefix: str | None = Field(
        default=None, min_length=1, max_length=1024, description="Only keys with this prefix."
    )
    expirationDays: int | None = Field(default=None, ge=1, le=36500)
    abortIncompleteMultipartUploadDays: int | None = Field(default=None, ge=1, le=36500)

    @model_validator(mode="after")
    def _does_something(self) -> LifecycleRule:
        if self.expirationDays is None and self.abortIncompleteMultipartUploadDays is None:
            raise ValueError("a rule needs expirationDays or abortIncompleteMultipartUploadDays")
        return self


NAME_SUFFIX = 8  # hex characters the tool adds after a namePrefix


class BucketSpec(Spec):
    namePrefix: Annotated[str | None, LOCAL] = Field(
        default=None,
        min_length=3,
        max_length=63 - NAME_SUFFIX,
        pattern=r"^[a-z0-9][a-z0-9.-]*$",
        description="Bucket names are global: with a prefix the bucket is named PREFIX plus 8 "
        "characters derived from the account, region, stack and metadata.name (shown as AWS "
        "Name), so the manifest runs unchanged in any account. A changed prefix names a new "
        "bucket; the old one stays (with --prune its deletionPolicy applies).",
    )
    tags: Tags | None = None
    # Omitted: left as AWS has it (a bucket once versioned can never go back to "never").
    versioning: Annotated[Literal["Enabled", "Suspended"] | None, LATE_INIT] = None
    encryption: Encryption = Field(default_factory=Encryption)
    publicAccessBlock: PublicAccessBlock = Field(default_factory=PublicAccessBlock)
    lifecycleRules: Annotated[list[LifecycleRule], Field(max_length=1000), set_by("id")] = Field(
        default_factory=list
    )

    @model_validator(mode="after")
    def _distinct_rules(self) -> BucketSpec:
        ids = [r.id for r in self.lifecycleRules]
        if len(set(ids)) != len(ids):
            raise ValueError("lifecycleRules: an id appears twice")
        return self


class Bucket(Resource):
    """An S3 bucket: versioning, encryption, public access block and lifecycle rules."""

    KIND: ClassVar[str] = "Bucket"
    PLURAL: ClassVar[str] = "buckets"
    SHORT_NAMES: ClassVar[tuple[str, ...]] = ("bkt",)
    # A bucket holds data no re-apply brings back: deleting it from a stack leaves it in AWS
    # unless the manifest says `deletionPolicy: Delete`.
    DELETION_POLICY: ClassVar[DeletionPolicy] = "Retain"

    kind: Literal["Bucket"]
    metadata: BucketMetadata
    spec: BucketSpec
