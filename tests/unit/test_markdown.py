"""The plan as a pull-request comment: pure Markdown from hand-built plans."""

from __future__ import annotations

from reconciler.engine.diff import Change
from reconciler.engine.types import Action, Plan, Verb
from reconciler.render import markdown
from reconciler.render import plans as render_plans

CE = "ComputeEnvironment"
JQ = "JobQueue"
JD = "JobDefinition"


def sample_plan() -> Plan:
    plan = Plan(stack="prod", region="eu-west-1")
    plan.add(Action(id=f"{CE}/new", kind=CE, name="new", verb=Verb.CREATE, aws_name="new"))
    plan.add(
        Action(
            id=f"{CE}/spot",
            kind=CE,
            name="spot",
            verb=Verb.REPLACE,
            aws_name="spot-1a2b3c",
            summary="blue/green",
            changes=[Change("computeResources.instanceTypes", ["c5"], ["m5"])],
        )
    )
    plan.add(
        Action(
            id=f"{CE}/spot#delete:spot",
            kind=CE,
            name="spot",
            verb=Verb.DELETE,
            aws_name="spot",
            summary="replaced by spot-1a2b3c",
        )
    )
    plan.add(
        Action(
            id=f"{JQ}/q",
            kind=JQ,
            name="q",
            verb=Verb.UPDATE,
            aws_name="q",
            summary="in place",
            changes=[Change("priority", 1, 5), Change("tags.team", None, "x")],
            notes=["jobs keep running"],
        )
    )
    plan.add(Action(id=f"{JD}/same", kind=JD, name="same", verb=Verb.NOOP, aws_name="same"))
    plan.add(
        Action(
            id=f"{JD}/jd",
            kind=JD,
            name="jd",
            verb=Verb.REVISION,
            aws_name="jd",
            changes=[Change("containerProperties.image", "a", "b")],
        )
    )
    return plan


def section(text: str, heading: str) -> str:
    """The text of one `### ` section."""
    start = text.index(heading)
    end = text.find("\n### ", start + 1)
    return text[start : end if end != -1 else len(text)]


def test_title_summary_table_and_final_line() -> None:
    text = markdown.plan_markdown(sample_plan())
    lines = text.splitlines()
    assert lines[0] == markdown.MARKER
    assert lines[1] == "## Reconciler plan"
    assert "| 🟢 `+` | to create | 1 |" in lines
    assert "| 🟡 `~` | to update | 1 |" in lines
    assert "| 🔴 `-/+` | to replace | 1 |" in lines
    assert "| 🟢 `+` | new revision | 1 |" in lines
    assert "| 🔴 `-` | to delete | 1 |" in lines
    assert "| ⚪ `=` | unchanged | 1 |" in lines
    digest = render_plans.plan_hash(sample_plan())
    assert lines[-2] == f"<!-- reconciler:plan-hash {digest} -->"  # the workflow applies it
    assert (
        lines[-1] == f"<sub>Stack prod · region eu-west-1 · plan {digest} · reconciler 0.1.0</sub>"
    )
    assert text.endswith("\n")


def test_destructive_changes_come_first() -> None:
    text = markdown.plan_markdown(sample_plan())
    warning = text.index("### ⚠️ Destructive changes")
    assert (
        warning < text.index("| | Action | Count |") < text.index("### 🟢 ComputeEnvironment/new")
    )
    block = section(text, "### ⚠️ Destructive changes").split("\n\n")[1]
    assert "- `-/+` **ComputeEnvironment/spot** (AWS: spot-1a2b3c): replace: blue/green" in block
    assert "- `-` **ComputeEnvironment/spot**: delete: replaced by spot-1a2b3c" in block
    assert "JobQueue" not in block and "new revision" not in block


def test_one_section_per_resource_with_its_changes_and_notes() -> None:
    text = markdown.plan_markdown(sample_plan())
    spot = section(text, "### 🔴 ComputeEnvironment/spot")
    assert spot.index("`-/+` **ComputeEnvironment/spot**") < spot.index("`-` **Compute")
    assert '| computeResources.instanceTypes | \\["c5"\\] | \\["m5"\\] |' in spot
    queue = section(text, "### 🟡 JobQueue/q")
    assert queue.splitlines()[2] == "`~` **JobQueue/q**: update in place: in place"
    assert "| Path | From | To |\n|---|---|---|\n| priority | 1 | 5 |\n" in queue
    assert "| tags.team | *(unset)* | x |" in queue
    assert "> **Note:** jobs keep running" in queue
    assert "| containerProperties.image | a | b |" in section(text, "### 🟢 JobDefinition/jd")
    assert "JobDefinition/same" not in text  # no changes, no section


def test_values_and_names_are_escaped() -> None:
    plan = Plan(stack="st`ack", region="us-east-1")
    plan.add(
        Action(
            id=f"{JD}/a_b",
            kind=JD,
            name="a_b",
            verb=Verb.REVISION,
            summary="uses `|` <b>",
            changes=[
                Change("containerProperties.command", ["sh", "-c", "a | b"], ["echo `x`"]),
                Change("parameters.p", "line1\nline2", "*bold*"),
            ],
            notes=["see [link](x)"],
        )
    )
    text = markdown.plan_markdown(plan)
    block = section(text, "### 🟢 JobDefinition/a\\_b")
    assert '| \\["sh", "-c", "a \\| b"\\] | \\["echo \\`x\\`"\\] |' in block
    assert "| line1<br>line2 | \\*bold\\* |" in block
    assert "new revision: uses \\`\\|\\` \\<b\\>" in block
    assert "> **Note:** see \\[link\\](x)" in block
    assert "Stack st\\`ack" in text.splitlines()[-1]
    # Every table row still has exactly its four unescaped pipes.
    for row in (line for line in block.splitlines() if line.startswith("| ")):
        assert row.replace("\\|", "").count("|") == 4


def test_escape() -> None:
    assert markdown.escape("a|b`c") == "a\\|b\\`c"
    assert markdown.escape("x\r\ny") == "x<br>y"
    assert markdown.escape(5) == "5"


def test_no_changes() -> None:
    plan = Plan(stack="default", region="us-east-1")
    plan.add(Action(id=f"{JD}/a", kind=JD, name="a", verb=Verb.NOOP))
    text = markdown.plan_markdown(plan)
    assert "✅ **No changes**: AWS matches the manifests." in text
    assert "Destructive" not in text and "### " not in text
    assert "| ⚪ `=` | unchanged | 1 |" in text
    empty = markdown.plan_markdown(Plan(stack="s", region="r"))
    assert "Plan: nothing declared." in empty


def test_blocked_actions_are_called_out() -> None:
    plan = Plan(stack="default", region="us-east-1")
    plan.add(
        Action(
            id=f"{JQ}/theirs",
            kind=JQ,
            name="theirs",
            verb=Verb.CONFLICT,
            summary="owned by stack other",
            notes=["use --adopt to take it over"],
        )
    )
    plan.add(Action(id=f"{JQ}/busy", kind=JQ, name="busy", verb=Verb.REFUSED, summary="jobs"))
    text = markdown.plan_markdown(plan)
    block = section(text, "### ⛔ Blocked: this plan cannot be applied")
    assert "- `!` **JobQueue/theirs**: conflict: owned by stack other" in block
    assert "  - use --adopt to take it over" in block
    assert "- `!` **JobQueue/busy**: refused: jobs" in block
    assert text.index("### ⛔ Blocked") < text.index("| | Action | Count |")


def test_long_values_are_cut() -> None:
    plan = Plan(stack="default", region="us-east-1")
    plan.add(
        Action(
            id=f"{JD}/a",
            kind=JD,
            name="a",
            verb=Verb.REVISION,
            changes=[Change("containerProperties.image", "x" * 1000, "y")],
        )
    )
    row = next(r for r in markdown.plan_markdown(plan).splitlines() if r.startswith("| contain"))
    assert row == f"| containerProperties.image | {'x' * (markdown.MAX_VALUE - 1)}… | y |"


def test_a_huge_plan_stays_under_githubs_comment_limit() -> None:
    plan = Plan(stack="default", region="us-east-1")
    for i in range(2000):
        plan.add(
            Action(
                id=f"{JD}/jd-{i}",
                kind=JD,
                name=f"jd-{i}",
                verb=Verb.REVISION,
                changes=[Change("containerProperties.image", f"old-{i}", f"new-{i}")],
            )
        )
    text = markdown.plan_markdown(plan)
    assert len(text) <= markdown.MAX_CHARS
    shown = text.count("### 🟢 JobDefinition/")
    assert 0 < shown < 2000
    assert f"*… and {2000 - shown} more resources with changes:" in text
    assert "| 🟢 `+` | new revision | 2000 |" in text
    assert text.splitlines()[-1].startswith("<sub>Stack default")


def test_long_lists_at_the_top_are_cut() -> None:
    plan = Plan(stack="default", region="us-east-1")
    for i in range(2000):
        plan.add(Action(id=f"{CE}/ce-{i}", kind=CE, name=f"ce-{i}", verb=Verb.DELETE))
        plan.add(Action(id=f"{JQ}/q-{i}", kind=JQ, name=f"q-{i}", verb=Verb.CONFLICT))
    text = markdown.plan_markdown(plan)
    assert len(text) <= markdown.MAX_CHARS
    blocked = section(text, "### ⛔ Blocked")
    destructive = section(text, "### ⚠️ Destructive changes")
    assert blocked.count("- `!` ") == destructive.count("- `-` ") == markdown.MAX_LISTED
    assert f"- … and {2000 - markdown.MAX_LISTED} more" in blocked
    assert f"- … and {2000 - markdown.MAX_LISTED} more" in destructive
