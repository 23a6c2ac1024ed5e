"""A stand-in for the AWS CLI on a sandbox job's PATH: `aws s3 cp` and `aws s3 ls`, with boto3.

A job's script written for AWS (`aws s3 cp result.txt ${BUCKET}/`) must work unchanged on the
sandbox, where the job runs on the host (`job_runner`) and the AWS CLI may not be installed
(CI installs only our package). When `aws` is not on the job's PATH, or
RECONCILER_SANDBOX_AWS_CLI=shim, `job_runner` puts a directory holding an `aws` script that
runs `main()` first on it. The job's environment already points boto3 at the sandbox
(AWS_ENDPOINT_URL, dummy credentials, region), so nothing here knows about the sandbox.

Supported, as the AWS CLI does them: `aws s3 cp SRC DST` (a local file or `-` for stdin/stdout
on one side, `s3://bucket/key` on the other, or S3 to S3; a destination ending in `/`, or a
local directory, takes the source's file name), `aws s3 ls [s3://bucket[/prefix]]
[--recursive]`, and the options `--quiet`, `--only-show-errors`, `--no-progress`,
`--region`, `--endpoint-url`. Anything else says clearly that it is not supported here and
exits 2 (the AWS CLI's exit code for a command line it cannot use), instead of pretending.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

PROG = "aws"
USAGE_EXIT = 2  # as the AWS CLI: a command line it cannot use
FAILED_EXIT = 1  # as the AWS CLI's s3 commands: the transfer failed, or ls found nothing
FLAGS = ("--quiet", "--only-show-errors", "--no-progress", "--recursive")
VALUED = ("--region", "--endpoint-url")
WRAPPER = """#!/bin/sh
# The reconciler sandbox's stand-in for the AWS CLI (reconciler/sandbox/aws_shim.py).
exec {python} -c 'import sys; sys.path.insert(0, sys.argv.pop(1)); \
from reconciler.sandbox.aws_shim import main; sys.exit(main())' {root} "$@"
"""


class Unsupported(Exception):
    """A command line the stand-in does not handle: said plainly, exit 2."""


@dataclass
class Command:
    words: list[str] = field(default_factory=list)  # positional arguments
    flags: set[str] = field(default_factory=set)
    options: dict[str, str] = field(default_factory=dict)


def write_wrapper(directory: Path) -> Path:
    """Writes the `aws` script into `directory` (once) and returns the directory.

    The script runs this module with the interpreter and the copy of `reconciler` that the
    server runs, whatever the job's PYTHONPATH says.
    """
    directory.mkdir(parents=True, exist_ok=True)
    script = directory / PROG
    root = str(Path(__file__).resolve().parents[2])
    text = WRAPPER.format(python=shlex.quote(sys.executable), root=shlex.quote(root))
    if not script.exists() or script.read_text() != text:
        partial = directory / f".{PROG}.{os.getpid()}"
        partial.write_text(text)
        partial.chmod(0o755)
        partial.replace(script)  # atomic: a job starting now sees the old or the new script
    return directory


def parse(argv: list[str]) -> Command:
    command = Command()
    args = iter(argv)
    for arg in args:
        name, has_value, value = arg.partition("=")
        if name in VALUED:
            command.options[name] = value if has_value else next(args, "")
        elif arg in FLAGS:
            command.flags.add(arg)
        elif arg.startswith("--") or (arg.startswith("-") and arg != "-"):
            raise Unsupported(f"the option {arg}")
        else:
            command.words.append(arg)
    return command


def split_s3(url: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key)."""
    bucket, _, key = url[len("s3://") :].partition("/")
    if not bucket:
        raise Unsupported(f"{url!r} (no bucket)")
    return bucket, key


def client(command: Command) -> Any:
    import boto3

    return boto3.client(
        "s3",
        region_name=command.options.get("--region") or None,
        endpoint_url=command.options.get("--endpoint-url") or None,
    )


def _say(command: Command, text: str) -> None:
    if not command.flags & {"--quiet", "--only-show-errors"}:
        print(text, flush=True)


def copy(command: Command) -> int:
    if len(command.words) != 2 or "--recursive" in command.flags:
        raise Unsupported("`aws s3 cp` other than one SRC and one DST (no --recursive)")
    src, dst = command.words
    remote_src, remote_dst = src.startswith("s3://"), dst.startswith("s3://")
    s3 = client(command)
    if remote_src and remote_dst:
        (sb, sk), (db, dk) = split_s3(src), split_s3(dst)
        dk = dk + Path(sk).name if not dk or dk.endswith("/") else dk
        s3.copy_object(Bucket=db, Key=dk, CopySource=f"{sb}/{sk}")
        _say(command, f"copy: {src} to s3://{db}/{dk}")
    elif remote_dst:
        bucket, key = split_s3(dst)
        if not key or key.endswith("/"):
            if src == "-":
                raise Unsupported("`aws s3 cp - s3://bucket/` (streaming needs a full key)")
            key += Path(src).name
        if src == "-":
            s3.upload_fileobj(sys.stdin.buffer, bucket, key)
            return 0
        if not Path(src).is_file():
            print(f"aws: the user-provided path {src} does not exist.", file=sys.stderr)
            return FAILED_EXIT
        with open(src, "rb") as body:
            s3.upload_fileobj(body, bucket, key)
        _say(command, f"upload: {src} to s3://{bucket}/{key}")
    elif remote_src:
        bucket, key = split_s3(src)
        if dst == "-":
            s3.download_fileobj(bucket, key, _Stdout(sys.stdout.buffer))
            sys.stdout.flush()
            return 0
        target = Path(dst)
        if dst.endswith("/") or target.is_dir():
            target = target / Path(key).name
        s3.download_file(bucket, key, str(target))
        _say(command, f"download: {src} to {target}")
    else:
        raise Unsupported("`aws s3 cp` between two local paths")
    return 0


class _Stdout:
    """A write-only stream for download_fileobj, which writes its parts in order."""

    def __init__(self, stream: BinaryIO) -> None:
        self.stream = stream

    def write(self, data: bytes) -> int:
        return self.stream.write(data)


def listing(command: Command) -> int:
    if len(command.words) > 1:
        raise Unsupported("`aws s3 ls` with more than one path")
    s3 = client(command)
    if not command.words:
        for bucket in s3.list_buckets().get("Buckets", []):
            print(f"{bucket['CreationDate']:%Y-%m-%d %H:%M:%S} {bucket['Name']}")
        return 0
    if not command.words[0].startswith("s3://"):
        raise Unsupported("`aws s3 ls` of a path that is not s3://bucket[/prefix]")
    bucket, prefix = split_s3(command.words[0])
    recursive = "--recursive" in command.flags
    base = "" if recursive else prefix[: prefix.rfind("/") + 1]
    delimiter: dict[str, str] = {} if recursive else {"Delimiter": "/"}
    found = 0
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix, **delimiter)
    for page in pages:
        for common in page.get("CommonPrefixes", []):
            found += 1
            print(f"{'PRE':>30} {common['Prefix'][len(base) :]}")
        for item in page.get("Contents", []):
            found += 1
            when = item["LastModified"].astimezone()
            print(f"{when:%Y-%m-%d %H:%M:%S} {item['Size']:>10} {item['Key'][len(base) :]}")
    return 0 if found or not prefix else FAILED_EXIT  # as the AWS CLI: a prefix with nothing


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        command = parse(argv)
        service, action = [*command.words, "", ""][:2]
        del command.words[:2]
        if service != "s3" or action not in ("cp", "ls"):
            raise Unsupported(f"`aws {' '.join(argv[:2])}`".replace("` ", "`"))
        return copy(command) if action == "cp" else listing(command)
    except Unsupported as why:
        print(
            f"aws: {why} is not supported on the reconciler sandbox: this is its stand-in for "
            "the AWS CLI, which does `aws s3 cp` and `aws s3 ls` only. Install the AWS CLI "
            "(then jobs use it) for anything else.",
            file=sys.stderr,
        )
        return USAGE_EXIT
    except Exception as err:  # botocore's errors: a message, as the AWS CLI prints them
        print(f"fatal error: {err}", file=sys.stderr)
        return FAILED_EXIT
