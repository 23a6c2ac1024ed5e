"""The fast YAML path (libyaml's events into ruamel's composer) loads exactly what the
pure-Python path loads: the same data, document lines and line of every value, or, for a text
that does not load, the same problem, word for word."""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import ManifestError
from reconciler.manifests import cevents, loader
from reconciler.manifests.loader import Budget, Exhausted

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "manifests").rglob("*.yaml"))

TRICKY = [
    "a: 1\nb: [1, 2, {c: d}]\n",
    "a: 1\n---\nb: 2\n...\n---\nc: 3\n",
    "base: &b {x: 1, y: 2}\nuse:\n  <<: *b\n  y: 3\n",
    "a: &x [1, 2]\nb: *x\nc: *x\n",
    "a: |\n  line 1\n  line 2\nb: >\n  folded\n  text\n\n  para\nc: |-\n  keep\n",
    "a: 'single ''quoted'''\nb: \"double \\t \\u00e9 \\/ \\x41\"\n",
    "yes: no\non: off\nn: 0o17\nm: 017\nf: 1_000\ng: .inf\nh: ~\ni: 2024-01-01\n",
    "a:\n\t- 1\n",
    "a: 1\na: 2\n",
    "a: !!int abc\n",
    "%YAML 1.2\n---\na: 1\n",
    "%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n",
    "a: !custom 1\n",
    "[1, 2\n",
    "a: b: c\n",
    "- a\nb: c\n",
    "a: 1\n  b: 2\n",
    "? complex\n: value\n",
    "? [a, b]\n: value\n",
    "a: *undefined\n",
    "a: x\u0085y\n",
    "a: x\u2028y\n",
    'a: "x\\\n  y"\n',
    "{a: 1, b: [x, y], c: {d: e}}\n",
    "a: [b, c: d]\n",
    "a: {b, c}\n",
    "key with spaces: value # comment\n# only a comment\n",
    "a: 'multi\n  line\n\n  single'\n",
    "a:\n- 1\n- - 2\n  - 3\n",
    "\ufeffa: 1\n",
    "a: 1\n--- |\n  text\n",
    "--- 5\n",
    "a: -.5e+3\nb: 0x1F\nc: +12\nd: 1:30\n",
    "a: @b\n",
    "a: `b\n",
    "a: b\n\x00",
    "a: [" * 150 + "]" * 150 + "\n",
    "x0: &a0 [1]\n" + "".join(f"x{i}: &a{i} [*a{i - 1}, *a{i - 1}]\n" for i in range(1, 40)),
    "apiVersion: v1\nkind: List\nitems:\n- kind: A\n  metadata: {name: a}\n- kind: B\n",
]


def _outcome(load: Any) -> Any:
    try:
        docs = load()
    except ManifestError as exc:
        return ("error", [str(p) for p in exc.problems])
    except Exhausted as exc:
        return ("exhausted", str(exc.problem))
    lines = [[d.line_of(path) for path in _paths(d.data)] for d in docs]
    return ("ok", [(d.file, d.line, repr(d.data), d.subject) for d in docs], lines)


def _paths(data: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(data, dict):
        for k, v in list(data.items())[:20]:
            out += _paths(v, (*prefix, k))
    elif isinstance(data, list):
        for i, v in enumerate(data[:20]):
            out += _paths(v, (*prefix, str(i)))
    return out[:200]


def _same(text: str) -> None:
    pure = _outcome(lambda: loader._load_text(text, "f.yaml", Budget(), fast=False))
    used = _outcome(lambda: loader.load_text(text, "f.yaml", Budget()))
    assert used == pure, text


needs_libyaml = pytest.mark.skipif(not cevents.AVAILABLE, reason="PyYAML without libyaml")


@needs_libyaml
@pytest.mark.parametrize("text", TRICKY)
def test_tricky_yaml_loads_as_on_the_pure_python_path(text: str) -> None:
    _same(text)


@needs_libyaml
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_the_example_manifests_load_on_the_fast_path_as_on_the_pure_one(path: Path) -> None:
    text = path.read_text()
    _same(text)
    fast = loader._load_text(text, str(path), Budget(), fast=True)  # no fallback needed
    assert [d.data for d in fast] == [d.data for d in loader.load_text(text, str(path))]


@needs_libyaml
def test_mutated_texts_load_as_on_the_pure_python_path() -> None:
    base = (ROOT / "manifests" / "examples" / "batch-stack.yaml").read_text()
    rng = random.Random(9)
    pieces = [
        " ",
        "\t",
        "\n",
        ":",
        "- ",
        "{",
        "}",
        "[",
        "]",
        "&a ",
        "*a",
        "!!str ",
        "'",
        '"',
        "#",
        "? ",
        "|",
        ">",
        "---\n",
        "\\",
        "\u00e9",
        ",",
        "<<: *a\n",
    ]
    for _ in range(150):
        text = base
        for _ in range(rng.randint(1, 3)):
            at = rng.randrange(len(text))
            if rng.random() < 0.5:
                text = text[:at] + rng.choice(pieces) + text[at:]
            else:
                text = text[:at] + text[at + rng.randint(1, 4) :]
        _same(text)


@needs_libyaml
def test_a_normal_stack_is_not_parsed_twice(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[bool] = []
    original = loader._load_text

    def counting(text: str, file: str, budget: Budget, fast: bool) -> Any:
        calls.append(fast)
        return original(text, file, budget, fast)

    monkeypatch.setattr(loader, "_load_text", counting)
    loader.load_text((ROOT / "manifests" / "examples" / "batch-stack.yaml").read_text(), "f")
    assert calls == [True]


@needs_libyaml
def test_a_text_past_a_bound_is_not_parsed_again_at_the_slow_pace(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The bound's message is ours and the same on both paths (checked above): a text that
    reaches it is reported from the fast path, not parsed again by ruamel's pure Python."""
    calls: list[bool] = []
    original = loader._load_text

    def counting(text: str, file: str, budget: Budget, fast: bool) -> Any:
        calls.append(fast)
        return original(text, file, budget, fast)

    monkeypatch.setattr(loader, "_load_text", counting)
    with pytest.raises(ManifestError, match="values once aliases are expanded"):
        loader.load_text("values: [" + "1, " * 100_001 + "1]\n", "f")
    assert calls == [True]
