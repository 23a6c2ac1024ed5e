"""Bucket (S3), over HTTP to moto: defaults, no-op re-apply, updates, deletion policies."""

from __future__ import annotations

from tests.conftest import client


def bucket(name: str = "data-bkt", extra: str = "", policy: str = "Retain") -> str:
    return f"""
apiVersion: reconciler.io/v1alpha1
kind: Bucket
metadata:
  name: {name}
  labels: {{team: genomics}}
spec:
  deletionPolicy: {policy}
{extra}
"""


def s3_writes(result) -> int:  # type: ignore[no-untyped-def]
    """Writes to S3 (the stack's lease in DynamoDB is written by every apply and delete)."""
    return sum(
        n
        for k, n in result.calls.items()
        if k.startswith("s3:") and not k.split(":", 1)[1].startswith(("Head", "List", "Get"))
    )


def _tags(aws: str, name: str) -> dict[str, str]:
    out = client(aws, "s3").get_bucket_tagging(Bucket=name)["TagSet"]
    return {t["Key"]: t["Value"] for t in out}


def test_create_with_defaults_reapply_and_update(run, write, aws):
    path = write(bucket())
    first = run("apply", "-f", path)
    assert first.code == 0, first.out + first.err
    assert "Plan: 1 to create." in first.out
    s3 = client(aws, "s3")
    pab = s3.get_public_access_block(Bucket="data-bkt")["PublicAccessBlockConfiguration"]
    assert all(pab.values()) and len(pab) == 4
    enc = s3.get_bucket_encryption(Bucket="data-bkt")["ServerSideEncryptionConfiguration"]
    assert enc["Rules"][0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    tags = _tags(aws, "data-bkt")
    assert tags["reconciler.io/stack"] == "default" and tags["team"] == "genomics"
    assert "Status" not in s3.get_bucket_versioning(Bucket="data-bkt")

    again = run("apply", "-f", path)
    assert again.code == 0 and "No changes" in again.out, again.out
    assert s3_writes(again) == 0, again.calls

    changed = write(
        bucket(
            extra="  versioning: Enabled\n"
            "  tags: {cost: lab}\n"
            "  lifecycleRules:\n"
            "    - {id: tmp, prefix: tmp/, expirationDays: 7,"
            " abortIncompleteMultipartUploadDays: 2}\n"
        )
    )
    updated = run("apply", "-f", changed)
    assert updated.code == 0, updated.out + updated.err
    assert updated.calls.get("s3:PutBucketVersioning") == 1
    assert updated.calls.get("s3:PutBucketLifecycleConfiguration") == 1
    assert updated.calls.get("s3:PutBucketTagging") == 1
    assert s3_writes(updated) == 3, updated.calls  # nothing else is sent
    assert s3.get_bucket_versioning(Bucket="data-bkt")["Status"] == "Enabled"
    [rule] = s3.get_bucket_lifecycle_configuration(Bucket="data-bkt")["Rules"]
    assert rule["ID"] == "tmp" and rule["Expiration"]["Days"] == 7
    assert _tags(aws, "data-bkt")["cost"] == "lab"
    assert s3_writes(run("apply", "-f", changed)) == 0

    shown = run("get", "-f", changed, "-o", "json")
    assert shown.code == 0 and '"Enabled"' in shown.out


def test_retain_delete_leaves_the_bucket(run, write, aws):
    path = write(bucket())
    assert run("apply", "-f", path).code == 0
    gone = run("delete", "--yes", "-f", path)
    assert gone.code == 0, gone.out
    assert "Retain" in gone.out
    assert s3_writes(gone) == 0, gone.calls
    client(aws, "s3").head_bucket(Bucket="data-bkt")


def test_delete_with_objects_is_refused_unless_forced(run, write, aws):
    path = write(bucket(policy="Delete", extra="  versioning: Enabled\n"))
    assert run("apply", "-f", path).code == 0
    s3 = client(aws, "s3")
    for i in range(3):
        s3.put_object(Bucket="data-bkt", Key=f"k{i}", Body=b"x")
    s3.put_object(Bucket="data-bkt", Key="k0", Body=b"y")  # a second version

    refused = run("delete", "--yes", "-f", path)
    assert refused.code != 0
    assert "holds 3 objects" in refused.out and "--force" in refused.out, refused.out
    assert s3_writes(refused) == 0
    s3.head_bucket(Bucket="data-bkt")

    forced = run("delete", "--yes", "-f", path, "--force")
    assert forced.code == 0, forced.out + forced.err
    assert forced.calls.get("s3:DeleteBucket") == 1
    names = [b["Name"] for b in s3.list_buckets()["Buckets"]]
    assert "data-bkt" not in names


def test_an_unowned_bucket_is_a_conflict_and_adopt_takes_it_over(run, write, aws):
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket="theirs-bkt")
    path = write(bucket(name="theirs-bkt"))
    plan = run("apply", "-f", path)
    assert plan.code == 1
    assert "use --adopt to take it over" in plan.out
    assert s3_writes(plan) == 0
    deleted = run("delete", "--yes", "-f", path)
    assert deleted.code == 0 and s3_writes(deleted) == 0

    adopted = run("apply", "-f", path, "--adopt")
    assert adopted.code == 0, adopted.out + adopted.err
    assert _tags(aws, "theirs-bkt")["reconciler.io/stack"] == "default"
    assert s3_writes(run("apply", "-f", path)) == 0


def test_a_name_prefix_derives_one_name_per_account_and_stack(run, write, aws):
    import json

    path = write(bucket(name="results", policy="Delete", extra="  namePrefix: results-"))
    planned = run("diff", "-f", path, "-o", "json")
    [action] = json.loads(planned.out)["actions"]
    name = action["awsName"]
    assert name.startswith("results-") and len(name) == len("results-") + 8, name
    # Derived, not random: the same plan names the same bucket, so an interrupted create is
    # found again rather than leaked. Here one was made but never tagged.
    assert json.loads(run("diff", "-f", path, "-o", "json").out)["actions"][0]["awsName"] == name
    s3 = client(aws, "s3")
    s3.create_bucket(Bucket=name)

    applied = run("apply", "-f", path)
    assert applied.code == 0, applied.out + applied.err
    assert "conflict" not in applied.out
    assert _tags(aws, name)["reconciler.io/name"] == "results"
    assert s3_writes(run("apply", "-f", path)) == 0
    shown = run("get", "-f", path, "-o", "json")
    assert name in shown.out

    other = run("diff", "-f", path, "--stack", "other", "-o", "json")
    assert json.loads(other.out)["actions"][0]["awsName"] != name  # per stack
