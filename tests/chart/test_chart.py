"""The Helm chart, rendered and linted by Helm's own engine (helm-python-sdk), no cluster needed.

Every rendered object is validated against the Kubernetes schemas (strict: unknown fields are
errors), custom resources against the chart's own CRDs, and the RBAC rules are compared with
the exact set the operator needs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import helm_python
import jsonschema
import kubernetes_validate
import pytest
import yaml

from reconciler import crds
from reconciler.registry import models

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "reconciler"
RELEASE = "batch-operator"
NAMESPACE = "reconciler-system"
FULLNAME = "batch-operator-reconciler"
K8S_VERSION = kubernetes_validate.latest_version()
ROLE_ARN = "arn:aws:iam::123456789012:role/reconciler"
IRSA = {"serviceAccount": {"annotations": {"eks.amazonaws.com/role-arn": ROLE_ARN}}}
NAMESPACED = {"watchNamespaces": ["a", "b"]}
VALUE_SETS = {"default": {}, "namespaced": NAMESPACED, "irsa": IRSA}
PEERING_CRDS = ["clusterkopfpeerings.kopf.dev.yaml", "kopfpeerings.kopf.dev.yaml"]

PLURALS = [m.PLURAL for m in models().values()]
Rule = tuple[str, str, str]  # (apiGroup, resource, verb)


def render(values: dict[str, Any]) -> list[dict[str, Any]]:
    with helm_python.Chart.load(CHART) as chart:
        out = chart.render(values, name=RELEASE, namespace=NAMESPACE)
    return [
        doc
        for path, text in sorted(out.items())
        if path.endswith((".yaml", ".yml"))
        for doc in yaml.safe_load_all(text)
        if doc
    ]


def one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    [found] = [d for d in docs if d["kind"] == kind]
    return found


def container(docs: list[dict[str, Any]]) -> dict[str, Any]:
    [c] = one(docs, "Deployment")["spec"]["template"]["spec"]["containers"]
    return c


def env(docs: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(docs)["env"]}


def rules(role: dict[str, Any]) -> set[Rule]:
    out: set[Rule] = set()
    for rule in role["rules"]:
        assert set(rule) == {"apiGroups", "resources", "verbs"}, rule  # no resourceNames etc.
        for group in rule["apiGroups"]:
            for resource in rule["resources"]:
                for verb in rule["verbs"]:
                    out.add((group, resource, verb))
    return out


def grant(group: str, resources: list[str], verbs: list[str]) -> set[Rule]:
    return {(group, r, v) for r in resources for v in verbs}


SCANNING = grant("", ["namespaces"], ["get", "list", "watch"]) | grant(
    "apiextensions.k8s.io", ["customresourcedefinitions"], ["get", "list", "watch"]
)
OWN = (
    grant("reconciler.io", PLURALS, ["get", "list", "watch", "patch", "update"])
    | grant("reconciler.io", [f"{p}/status" for p in PLURALS], ["patch", "update"])
    | grant("", ["events"], ["create", "patch"])
)


def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema, from the chart's crds/ directory."""
    out = {}
    for path in sorted((CHART / "crds").glob("*.yaml")):
        crd = yaml.safe_load(path.read_text())
        for version in crd["spec"]["versions"]:
            key = (f"{crd['spec']['group']}/{version['name']}", crd["spec"]["names"]["kind"])
            out[key] = version["schema"]["openAPIV3Schema"]
    return out


# -- rendering ---------------------------------------------------------------------------------


def test_default_values_render_the_cluster_wide_operator() -> None:
    docs = render({})
    assert sorted(d["kind"] for d in docs) == [
        "ClusterKopfPeering",
        "ClusterRole",
        "ClusterRoleBinding",
        "Deployment",
        "ServiceAccount",
    ]
    c = container(docs)
    assert c["command"] == ["reconciler"]
    assert c["args"] == [
        "operator",
        "--liveness=http://0.0.0.0:8080/healthz",
        f"--peering={FULLNAME}",
        "--all-namespaces",
    ]
    assert one(docs, "ClusterKopfPeering")["metadata"]["name"] == FULLNAME
    variables = env(docs)
    assert variables["AWS_REGION"] == "us-east-1"
    assert variables["RECONCILER_DRIFT_INTERVAL"] == "300"
    assert variables["RECONCILER_LOG_LEVEL"] == "INFO"
    assert "AWS_ENDPOINT_URL" not in variables


def test_watched_namespaces() -> None:
    docs = render(NAMESPACED)
    args = container(docs)["args"]
    assert args[-2:] == ["--namespace=a", "--namespace=b"]
    assert "--all-namespaces" not in args
    peerings = [d for d in docs if d["kind"] == "KopfPeering"]
    assert [(p["metadata"]["namespace"], p["metadata"]["name"]) for p in peerings] == [
        ("a", FULLNAME),
        ("b", FULLNAME),
    ]
    assert not [d for d in docs if d["kind"] == "ClusterKopfPeering"]


def test_values_reach_the_container() -> None:
    docs = render(
        {
            "aws": {"region": "eu-west-1", "endpointUrl": "http://moto:5000"},
            "driftInterval": 60,
            "logLevel": "DEBUG",
            "image": {"repository": "example.org/reconciler", "tag": "1.2.3"},
            "replicas": 2,
            "extraArgs": ["--priority=10"],
        }
    )
    assert env(docs) == {
        "AWS_REGION": "eu-west-1",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ENDPOINT_URL": "http://moto:5000",
        "RECONCILER_DRIFT_INTERVAL": "60",
        "RECONCILER_LOG_LEVEL": "DEBUG",
        "HOME": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONUNBUFFERED": "1",
    }
    assert container(docs)["image"] == "example.org/reconciler:1.2.3"
    assert container(docs)["args"][-1] == "--priority=10"
    assert one(docs, "Deployment")["spec"]["replicas"] == 2


def test_irsa_annotation_on_the_service_account() -> None:
    docs = render(IRSA)
    sa = one(docs, "ServiceAccount")
    assert sa["metadata"]["annotations"] == {"eks.amazonaws.com/role-arn": ROLE_ARN}
    assert sa["metadata"]["namespace"] == NAMESPACE
    pod = one(docs, "Deployment")["spec"]["template"]["spec"]
    assert pod["serviceAccountName"] == sa["metadata"]["name"] == FULLNAME
    assert "annotations" not in one(render({}), "ServiceAccount")["metadata"]


def test_deployment_selector_probes_and_security() -> None:
    deployment = one(render({}), "Deployment")
    spec = deployment["spec"]
    pod_labels = spec["template"]["metadata"]["labels"]
    selector = spec["selector"]["matchLabels"]
    assert selector and selector.items() <= pod_labels.items()
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] != 0
    c = pod["containers"][0]
    security = c["securityContext"]
    assert security["readOnlyRootFilesystem"] is True
    assert security["allowPrivilegeEscalation"] is False
    assert security["capabilities"] == {"drop": ["ALL"]}
    assert [p["containerPort"] for p in c["ports"]] == [8080]
    for probe in ("livenessProbe", "readinessProbe"):
        assert c[probe]["httpGet"] == {"path": "/healthz", "port": "health"}
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]


# -- lint and schemas --------------------------------------------------------------------------


@pytest.mark.parametrize("values", list(VALUE_SETS.values()), ids=list(VALUE_SETS))
def test_helm_lint_strict_has_no_errors(values: dict[str, Any]) -> None:
    report = helm_python.lint(CHART, values, strict=True)
    assert report["errors"] == []
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_lint_catches_a_broken_chart(tmp_path: Path) -> None:
    with helm_python.Chart.load(CHART) as chart:
        copy = Path(chart.save_dir(tmp_path))
    deployment = copy / "templates" / "deployment.yaml"
    selector = (
        "  selector:\n    matchLabels:\n"
        '      {{- include "reconciler.selectorLabels" . | nindent 6 }}\n'
    )
    text = deployment.read_text()
    assert selector in text
    deployment.write_text(text.replace(selector, ""))
    report = helm_python.lint(copy, {}, strict=True)
    assert any("matchLabels" in e for e in report["errors"])


@pytest.mark.parametrize("values", list(VALUE_SETS.values()), ids=list(VALUE_SETS))
def test_every_rendered_object_validates(values: dict[str, Any]) -> None:
    schemas = crd_schemas()
    for doc in render(values):
        key = (doc["apiVersion"], doc["kind"])
        if key in schemas:  # a custom resource: the chart's own CRD is its schema
            jsonschema.validate(doc, schemas[key])
        else:
            kubernetes_validate.validate(doc, K8S_VERSION, strict=True)


def test_strict_validation_rejects_unknown_fields() -> None:
    deployment = one(render({}), "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["securityContex"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, K8S_VERSION, strict=True)


# -- RBAC --------------------------------------------------------------------------------------


def test_cluster_wide_rbac_is_exactly_what_the_operator_needs() -> None:
    docs = render({})
    role = one(docs, "ClusterRole")
    assert rules(role) == SCANNING | OWN | grant(
        "kopf.dev", ["clusterkopfpeerings"], ["get", "list", "watch", "patch"]
    )
    binding = one(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": role["metadata"]["name"],
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
    ]
    assert not [d for d in docs if d["kind"] in ("Role", "RoleBinding")]


def test_namespaced_rbac_is_exactly_what_the_operator_needs() -> None:
    docs = render(NAMESPACED)
    assert rules(one(docs, "ClusterRole")) == SCANNING
    roles = [d for d in docs if d["kind"] == "Role"]
    assert [r["metadata"]["namespace"] for r in roles] == ["a", "b"]
    for role in roles:
        assert rules(role) == OWN | grant(
            "kopf.dev", ["kopfpeerings"], ["get", "list", "watch", "patch"]
        )
    bindings = [d for d in docs if d["kind"] == "RoleBinding"]
    assert [b["metadata"]["namespace"] for b in bindings] == ["a", "b"]
    for binding in bindings:
        assert binding["roleRef"]["kind"] == "Role"
        assert binding["subjects"] == [
            {"kind": "ServiceAccount", "name": FULLNAME, "namespace": NAMESPACE}
        ]


def test_rbac_covers_every_kind() -> None:
    resources = {r for _, r, _ in rules(one(render({}), "ClusterRole"))}
    assert set(PLURALS) <= resources
    assert {f"{p}/status" for p in PLURALS} <= resources
    assert "schedulingpolicies" in PLURALS and len(PLURALS) == len(
        models()
    )  # read from the CRD files


def test_rbac_can_be_left_to_the_cluster_admin() -> None:
    kinds = {d["kind"] for d in render({"rbac": {"create": False}})}
    assert not kinds & {"ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"}


# -- CRDs --------------------------------------------------------------------------------------


def test_the_charts_crds_are_the_generated_ones_and_kopfs_peering() -> None:
    generated = crds.crds()
    with helm_python.Chart.load(CHART) as chart:
        shipped = {Path(c["filename"]).name: c["data"] for c in chart.crds}
    assert sorted(shipped) == sorted([*generated, *PEERING_CRDS])
    for name, crd in generated.items():
        assert shipped[name] == crds.render(crd)


def test_peering_crds_match_what_kopf_uses() -> None:
    import kopf._cogs.structs.references as references

    for name, selector, scope in (
        ("clusterkopfpeerings.kopf.dev.yaml", references.CLUSTER_PEERINGS_K, "Cluster"),
        ("kopfpeerings.kopf.dev.yaml", references.NAMESPACED_PEERINGS_K, "Namespaced"),
    ):
        crd = yaml.safe_load((CHART / "crds" / name).read_text())
        kubernetes_validate.validate(crd, K8S_VERSION, strict=True)
        spec = crd["spec"]
        assert (spec["group"], spec["versions"][0]["name"]) == (selector.group, selector.version)
        assert spec["names"]["plural"] == selector.any_name
        assert spec["scope"] == scope
        assert "subresources" not in spec["versions"][0]  # kopf patches .status on the object
