"""Every bound on what a user can hand the tool, in one place, with where it comes from.

AWS documents most of them; the models declare those on their fields (so the JSON Schemas and
the CRDs carry them too), so that a value AWS would refuse is reported at `file:line` before any
AWS call, instead of failing half-way through an apply. The others are ours: they keep reading
input bounded in time and memory, and each says why it is what it is.

Sources:
- [quotas] AWS Batch service quotas:
  https://docs.aws.amazon.com/batch/latest/userguide/service_limits.html
- [tags] AWS Batch tag restrictions:
  https://docs.aws.amazon.com/batch/latest/userguide/tag-restrictions.html
- [api] AWS Batch API reference (also the documentation in botocore's batch service model):
  https://docs.aws.amazon.com/batch/latest/APIReference/

Stdlib only: the command line reads these for its options before anything heavy is imported.
"""

from __future__ import annotations

KIB = 1024
MIB = 1024 * KIB

# -- reading manifests (ours) ----------------------------------------------------------------

# The largest manifest a stack needs is a Pipeline at its 10,000-task maximum: about 1.3 MiB of
# YAML with modest tasks, the size Kubernetes allows one object (etcd's 1.5 MiB), which the
# operator must store. 4 MiB a file leaves room for a few of those; reading and parsing it takes
# seconds, not minutes (the round-trip YAML parser does roughly 50-100 KiB a second).
MAX_FILE_BYTES = 4 * MIB
# A whole stack: 50 compute environments and 50 queues a region [quotas], job definitions of at
# most 24 KiB each [quotas], pipelines. 16 MiB is several times any real one.
MAX_INPUT_BYTES = 16 * MIB
# Documents in one invocation: a region holds at most 100 environments and queues [quotas]; a
# stack of tasks and job definitions beyond this many is a generated file gone wrong.
MAX_DOCUMENTS = 10_000
# Values one document may expand to once YAML aliases are expanded (a "billion laughs" bomb is
# a few hundred bytes), and all documents together: a 10,000-task pipeline is ~100,000 values.
MAX_NODES_PER_DOCUMENT = 100_000
MAX_NODES = 1_000_000
# How deep collections may nest: a manifest nests a dozen levels; the YAML parser recurses on
# each, so a file of "[[[[..." must stop at a line, not at Python's recursion limit.
MAX_DEPTH = 100
# How long a named pipe given with -f may go without a writer before it is reported: a pipe that
# has a writer (`-f <(kustomize build)`) is read as slowly as the writer writes.
FIFO_WAIT_SECONDS = 10.0
# The longest value an error message quotes: one problem stays one readable line.
MAX_QUOTED = 80

# -- AWS Batch quotas [quotas] ----------------------------------------------------------------

JOB_DEFINITION_MAX_BYTES = 24 * KIB  # RegisterJobDefinition
SUBMIT_JOB_MAX_BYTES = 30 * KIB  # SubmitJob
MAX_ARRAY_SIZE = 10_000
MAX_DEPENDENCIES = 20  # jobs one job may depend on
MAX_ENVIRONMENTS_PER_QUEUE = 3

# -- the API's shapes [api] -------------------------------------------------------------------

INT32_MAX = (
    2**31 - 1
)  # the API's Integer: every count, size and duration without a range of its own
NAME_MAX = 128  # compute environments, queues, job definitions, scheduling policies, jobs
IMAGE_MAX = 255  # ContainerProperties.image: "up to 255 letters ..."
VOLUME_NAME_MAX = 255  # Volume.name
SHARE_IDENTIFIER_MAX = 255  # ShareAttributes / SubmitJob shareIdentifier
EVALUATE_ON_EXIT_PATTERN_MAX = 512  # EvaluateOnExit onStatusReason / onReason / onExitCode
EFS_ROOT_DIRECTORY_MAX = 4096
ARN_MAX = 2048  # IAM role ARNs (IAM's limit)
# The longest single string any field may hold: none can exceed the largest request AWS takes.
STRING_MAX = SUBMIT_JOB_MAX_BYTES

# -- tags [tags] ------------------------------------------------------------------------------

MAX_TAGS = 50
TAG_KEY_MAX = 128
TAG_VALUE_MAX = 256
RESERVED_TAG_PREFIXES = ("aws:",)  # in any case: "Don't use aws:, AWS:, ..."

# -- the stack (ours) -------------------------------------------------------------------------

# The stack name goes into a tag value on everything the tool creates, and the operator takes it
# from a namespace or a Kubernetes label: a Kubernetes label value's syntax fits both.
STACK_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9_.-]{0,61}[A-Za-z0-9])?$"
STACK_MAX = 63
