"""A deterministic fuzzer over the example stack: broken input must never crash the validator.

Each case starts from the valid documents of manifests/examples/batch-stack.yaml, applies a few
random mutations (structural ones on the loaded documents, then textual ones on the YAML text) and
runs `reconciler validate` in-process. Whatever the input, the command must exit 0 or 1, never
raise, never print a traceback, and on exit 1 report only `file:line: ...` lines plus the summary.

Only the stdlib `random` is used, seeded per case, so `test_fuzz[N]` reproduces case N exactly.
"""

from __future__ import annotations

import copy
import io
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from reconciler.cli import main

EXAMPLES = Path(__file__).resolve().parents[2] / "manifests" / "examples"
# The Batch resources and the roles and bucket they refer to: valid together.
BASE_TEXT = "---\n".join(
    (EXAMPLES / name).read_text(encoding="utf-8")
    for name in ("00-storage-and-roles.yaml", "batch-stack.yaml")
)
BASE_DOCS: list[Any] = list(YAML(typ="safe", pure=True).load_all(BASE_TEXT))

CASES = 400
SEED = 20240611

ERROR_LINE = re.compile(r"^.+:\d+: ")
SUMMARY = re.compile(r"^\d+ error\(s\); nothing was sent to AWS\.$")
# The CLI's own message for input that holds no document at all (an empty or comment-only file,
# which truncation produces); it is not a manifest problem and has no line to point at.
NO_RESOURCES = re.compile(r"^error: no resources found in .+$")

# Values of every YAML type, including ones that make pydantic, ruamel or the line finder work.
ODD_VALUES: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    7,
    10**30,
    2.5,
    float("inf"),
    float("nan"),
    "",
    "x",
    "FARGATE",
    "EC2",
    "ecsInstanceRole",
    "subnet-0abc",
    "not a valid name!",
    "line one\nline two",
    "tab\there",
    "\u00e9\u4e2d\U0001f600",
    "x" * 300,
    "reconciler.io/owner",
    "2024-01-01",
    [],
    [1, "two", None],
    [{"a": 1}],
    {},
    {"defaultVpc": True},
    {"a": {"b": [1, 2]}},
    {1: "int key"},
]
ODD_KEYS: list[Any] = [
    "extra",
    "nmae",
    "spek",
    "minvCpu",
    "computeResource",
    "priorty",
    "",
    "with space",
    "new\nline",
    "reconciler.io/x",
    "s[pec",
    "str",
    "Lookup",
    "[key]",
    1,
    True,
    None,
]
JUNK = [*"\t\n\r :-?[]{},#&*!|>'\"%@`\\", "\x00", "\x1b", "\ufeff", "\u2028", "---", "..."]


# -- structural mutations on the loaded documents ------------------------------------------------


def _containers(node: Any, out: list[Any]) -> list[Any]:
    """Every dict and non-empty list inside `node`, `node` included."""
    if isinstance(node, dict):
        out.append(node)
        for v in node.values():
            _containers(v, out)
    elif isinstance(node, list):
        if node:
            out.append(node)
        for v in node:
            _containers(v, out)
    return out


def _pick_slot(rng: random.Random, docs: list[Any]) -> tuple[Any, Any] | None:
    """A (container, key-or-index) pair somewhere in the documents."""
    found = _containers(docs, [])
    found = [c for c in found if c and c is not docs]
    if not found:
        return None
    container = rng.choice(found)
    key = (
        rng.choice(list(container))
        if isinstance(container, dict)
        else rng.randrange(len(container))
    )
    return container, key


def delete_key(rng: random.Random, docs: list[Any]) -> str:
    slot = _pick_slot(rng, docs)
    if slot is None:
        return "delete: nothing"
    container, key = slot
    del container[key]
    return f"delete {key!r}"


def replace_value(rng: random.Random, docs: list[Any]) -> str:
    slot = _pick_slot(rng, docs)
    if slot is None:
        return "replace: nothing"
    container, key = slot
    old = container[key]
    choices = [v for v in ODD_VALUES if type(v) is not type(old)]
    container[key] = copy.deepcopy(rng.choice(choices))
    return f"replace {key!r} with {container[key]!r}"[:120]


def insert_key(rng: random.Random, docs: list[Any]) -> str:
    dicts = [c for c in _containers(docs, []) if isinstance(c, dict)]
    if not dicts:
        return "insert: nothing"
    target = rng.choice(dicts)
    key = rng.choice(ODD_KEYS)
    target[key] = copy.deepcopy(rng.choice(ODD_VALUES))
    return f"insert {key!r}"


def duplicate_document(rng: random.Random, docs: list[Any]) -> str:
    if not docs:
        return "duplicate: nothing"
    i = rng.randrange(len(docs))
    docs.insert(rng.randrange(len(docs) + 1), copy.deepcopy(docs[i]))
    return f"duplicate document {i}"


def drop_document(rng: random.Random, docs: list[Any]) -> str:
    if not docs:
        return "drop: nothing"
    i = rng.randrange(len(docs))
    del docs[i]
    return f"drop document {i}"


def replace_document(rng: random.Random, docs: list[Any]) -> str:
    if not docs:
        return "replace document: nothing"
    i = rng.randrange(len(docs))
    docs[i] = copy.deepcopy(rng.choice(ODD_VALUES))
    return f"replace document {i} with {docs[i]!r}"[:120]


STRUCTURAL: list[Callable[[random.Random, list[Any]], str]] = [
    delete_key,
    delete_key,
    replace_value,
    replace_value,
    replace_value,
    insert_key,
    insert_key,
    duplicate_document,
    drop_document,
    replace_document,
]


def dump(docs: list[Any]) -> str:
    y = YAML(typ="safe", pure=True)
    y.default_flow_style = False
    buf = io.StringIO()
    y.dump_all(docs, buf)
    return buf.getvalue()


# -- textual mutations on the YAML text ----------------------------------------------------------


def truncate(rng: random.Random, text: str) -> tuple[str, str]:
    at = rng.randrange(len(text) + 1)
    return text[:at], f"truncate at {at}"


def insert_junk(rng: random.Random, text: str) -> tuple[str, str]:
    at = rng.randrange(len(text) + 1)
    junk = "".join(rng.choice(JUNK) for _ in range(rng.randint(1, 4)))
    return text[:at] + junk + text[at:], f"insert {junk!r} at {at}"


def reindent(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    delta = rng.choice([-4, -2, -1, 1, 2, 3])
    if delta < 0:
        lines[i] = lines[i][min(-delta, len(lines[i]) - len(lines[i].lstrip(" "))) :]
    else:
        lines[i] = " " * delta + lines[i]
    return "\n".join(lines), f"reindent line {i + 1} by {delta}"


def tabify(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    lines[i] = "\t" + lines[i].lstrip(" ")
    return "\n".join(lines), f"tab at line {i + 1}"


def duplicate_line(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    lines.insert(i, lines[i])
    return "\n".join(lines), f"duplicate line {i + 1}"


def delete_line(rng: random.Random, text: str) -> tuple[str, str]:
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    del lines[i]
    return "\n".join(lines), f"delete line {i + 1}"


TAGS = [
    "!!str ",
    "!!int ",
    "!!float ",
    "!!bool ",
    "!!null ",
    "!!binary ",
    "!!timestamp ",
    "!!set ",
    "!!omap ",
    "!!map ",
    "!!seq ",
    "!custom ",
    "!",
    "&anchor ",
    "*anchor ",
]


def tag_value(rng: random.Random, text: str) -> tuple[str, str]:
    """Puts a YAML tag, anchor or alias in front of a value."""
    lines = text.split("\n")
    candidates = [
        i for i, line in enumerate(lines) if ": " in line or line.lstrip().startswith("- ")
    ]
    if not candidates:
        return text, "tag: nothing"
    i = rng.choice(candidates)
    tag = rng.choice(TAGS)
    sep = ": " if ": " in lines[i] else "- "
    head, _, tail = lines[i].partition(sep)
    lines[i] = f"{head}{sep}{tag}{tail}"
    return "\n".join(lines), f"tag {tag!r} at line {i + 1}"


def merge_key(rng: random.Random, text: str) -> tuple[str, str]:
    """Inserts a `<<:` merge line: an anchored mapping, an alias (perhaps undefined) or a list."""
    lines = text.split("\n")
    i = rng.randrange(len(lines))
    indent = " " * (len(lines[i]) - len(lines[i].lstrip(" ")))
    key = rng.choice([k for k in ODD_KEYS if isinstance(k, str) and k.isalnum()] + ["maxvCpus"])
    value = rng.choice(["1", "x", "[a]", "{defaultVpc: true}", "null", "-5"])
    line = f"{indent}<<: " + rng.choice([f"&m {{{key}: {value}}}", "*m", f"[{{{key}: {value}}}]"])
    lines.insert(i + 1, line)
    return "\n".join(lines), f"merge {line.strip()!r} after line {i + 1}"


TEXTUAL: list[Callable[[random.Random, str], tuple[str, str]]] = [
    tag_value,
    merge_key,
    truncate,
    insert_junk,
    insert_junk,
    reindent,
    reindent,
    tabify,
    duplicate_line,
    duplicate_line,
    delete_line,
]


def mutate(case: int) -> tuple[bytes, list[str]]:
    """The mutated file content for `case`, and what was done to it."""
    rng = random.Random(SEED * 1000 + case)
    steps: list[str] = []
    docs = copy.deepcopy(BASE_DOCS)
    mode = rng.random()
    if mode < 0.45:  # structure only
        for _ in range(rng.randint(1, 3)):
            steps.append(rng.choice(STRUCTURAL)(rng, docs))
        text = dump(docs)
    elif mode < 0.8:  # text only, on the original file with its comments and flow style
        text = BASE_TEXT
    else:  # both
        steps.append(rng.choice(STRUCTURAL)(rng, docs))
        text = dump(docs)
    if mode >= 0.45:
        for _ in range(rng.randint(1, 3)):
            text, step = rng.choice(TEXTUAL)(rng, text)
            steps.append(step)
    data = text.encode("utf-8")
    if rng.random() < 0.05:  # raw bytes that are not UTF-8
        at = rng.randrange(len(data) + 1)
        junk = bytes(rng.randrange(0x80, 0x100) for _ in range(rng.randint(1, 3)))
        data = data[:at] + junk + data[at:]
        steps.append(f"insert bytes {junk!r} at {at}")
    return data, steps


def check_output(code: int, out: str, err: str, context: str) -> None:
    assert code in (0, 1), f"exit {code}\n{context}"
    assert "Traceback" not in out + err, context
    if code == 0:
        assert err == "", context
        assert re.search(r"^\d+ resources valid\.$", out, re.M), context
        return
    lines = err.splitlines()
    assert lines, f"exit 1 without a message\n{context}"
    if len(lines) == 1 and NO_RESOURCES.match(lines[0]):
        return
    assert SUMMARY.match(lines[-1]), f"no summary line\n{context}"
    bad = [line for line in lines[:-1] if not ERROR_LINE.match(line)]
    assert not bad, f"lines not in file:line form: {bad!r}\n{context}"
    assert lines[-1].startswith(f"{len(lines) - 1} error(s)"), f"count mismatch\n{context}"


def test_base_is_valid(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "stack.yaml"
    path.write_text(dump(copy.deepcopy(BASE_DOCS)), encoding="utf-8")
    assert main(["validate", "-f", str(path)]) == 0, capsys.readouterr().err


def test_mutations_are_deterministic() -> None:
    assert mutate(3) == mutate(3)
    assert mutate(3) != mutate(4)


@pytest.mark.filterwarnings("error")  # a warning would print lines that are not file:line
@pytest.mark.parametrize("case", range(CASES))
def test_fuzz(case: int, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data, steps = mutate(case)
    path = tmp_path / "fuzz.yaml"
    path.write_bytes(data)
    capsys.readouterr()
    try:
        code = main(["validate", "-f", str(path)])
    except SystemExit as exc:  # main returns its code and never exits: reported as a failure
        code = exc.code if isinstance(exc.code, int) else -1
    captured = capsys.readouterr()
    context = (
        f"case {case}: {'; '.join(steps)}\n--- stderr ---\n{captured.err}"
        f"--- input ---\n{data.decode('utf-8', 'replace')}"
    )
    check_output(code, captured.out, captured.err, context)
