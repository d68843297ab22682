"""The deployment files in deploy/ are valid and agree with the code they deploy.

Pure: nothing is started. Kubernetes manifests are validated against the schemas that
kubernetes-validate ships (strict: unknown fields fail), deploy/compose.yaml against the
Compose specification's JSON Schema (vendored in deploy/compose/, taken from the
docker-compose 1.29.2 wheel on PyPI), every ``VERKOSTO_*`` variable that deploy/ sets must
be a field of ``Settings``, the API's probes must point at routes the app really has, and
every container runs as a fixed non-root user.
"""

from __future__ import annotations

import copy
import json
import re
import shlex
from functools import cache
from pathlib import Path
from typing import Any

import jsonschema
import kubernetes_validate
import pytest
import yaml
from starlette.routing import Match

from services.resilience import STOP_WITHIN_S
from services.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
K8S = DEPLOY / "k8s"
COMPOSE = DEPLOY / "compose.yaml"
COMPOSE_SCHEMA = DEPLOY / "compose" / "compose-spec.json"
CONTAINERFILE = DEPLOY / "Containerfile"
ENV_EXAMPLE = DEPLOY / "verkosto.env.example"
K8S_VERSION = "1.30.0"  # the oldest Kubernetes these manifests promise to work on
COMPONENTS = ("api", "ingest", "relay", "projector")
VARIABLE = re.compile(r"\bVERKOSTO_[A-Z0-9_]+\b")


# Loading ------------------------------------------------------------------------------


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    found = []
    for path in sorted(K8S.glob("*.yaml")):
        for document in yaml.safe_load_all(path.read_text()):
            if document:
                found.append((f"{path.name}:{document['kind']}/{document['metadata']['name']}", document))
    return found


def k8s(kind: str, name: str) -> dict[str, Any]:
    for _, document in k8s_documents():
        if document["kind"] == kind and document["metadata"]["name"] == name:
            return document
    raise AssertionError(f"no {kind} {name} in deploy/k8s")


def pod_specs() -> list[tuple[str, dict[str, Any]]]:
    return [
        (label, doc["spec"]["template"]["spec"])
        for label, doc in k8s_documents()
        if doc["kind"] in ("Deployment", "StatefulSet", "DaemonSet", "Job")
    ]


def containers(spec: dict[str, Any]) -> list[dict[str, Any]]:
    return [*spec.get("initContainers", []), *spec["containers"]]


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())  # safe_load resolves the `<<:` merges


def verkosto_services() -> dict[str, dict[str, Any]]:
    """The Compose services that run the Verkosto image."""
    return {
        name: service
        for name, service in compose()["services"].items()
        if service.get("build", {}).get("dockerfile") == "deploy/Containerfile"
    }


def environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): str(v) for k, v in env.items()}


def containerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per instruction, continuation lines joined, comments gone."""
    joined, current = [], ""
    for line in CONTAINERFILE.read_text().splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if line.rstrip().endswith("\\"):
            current += line.rstrip()[:-1] + " "
            continue
        joined.append(current + line)
        current = ""
    return [(text.split(None, 1)[0].upper(), text.split(None, 1)[1].strip()) for text in joined]


def final_stage() -> list[tuple[str, str]]:
    instructions = containerfile_instructions()
    start = max(i for i, (op, _) in enumerate(instructions) if op == "FROM")
    return instructions[start:]


def containerfile_env() -> dict[str, str]:
    env = {}
    for op, args in containerfile_instructions():
        if op == "ENV":
            for pair in shlex.split(args):
                key, _, value = pair.partition("=")
                env[key] = value
    return env


def setting_names() -> set[str]:
    return {f"VERKOSTO_{name.upper()}" for name in Settings.model_fields}


@cache
def api_app() -> Any:
    from services.api.app import create_app

    return create_app(Settings())  # built, never started: no database or broker needed


def routed(path: str) -> bool:
    scope = {"type": "http", "method": "GET", "path": path, "root_path": "", "query_string": b"", "headers": []}
    return any(route.matches(scope)[0] is Match.FULL for route in api_app().router.routes)


# Kubernetes ---------------------------------------------------------------------------


@pytest.mark.parametrize("label,document", k8s_documents(), ids=[label for label, _ in k8s_documents()])
def test_every_kubernetes_manifest_is_valid_for_the_kubernetes_version_we_support(
    label: str, document: dict[str, Any]
) -> None:
    kubernetes_validate.validate(document, K8S_VERSION, strict=True)


def test_strict_validation_catches_a_misspelt_field() -> None:
    broken = copy.deepcopy(k8s("Deployment", "verkosto-api"))
    broken["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/readyz"}}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, K8S_VERSION, strict=True)


def test_every_component_has_a_deployment_and_a_disruption_budget() -> None:
    budgets = {
        "api": {"minAvailable": 1},
        "ingest": {"maxUnavailable": 1},
        "projector": {"maxUnavailable": 1},
        "relay": {"minAvailable": 1},
    }
    for component in COMPONENTS:
        deployment = k8s("Deployment", f"verkosto-{component}")
        (container,) = deployment["spec"]["template"]["spec"]["containers"]
        assert container["args"] == ["run", component]
        for kind in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][kind]), (component, kind)
        pdb = k8s("PodDisruptionBudget", f"verkosto-{component}")
        assert {k: v for k, v in pdb["spec"].items() if k != "selector"} == budgets[component]
        assert pdb["spec"]["selector"]["matchLabels"] == deployment["spec"]["selector"]["matchLabels"]
    assert k8s("Deployment", "verkosto-relay")["spec"]["replicas"] == 2  # one publishes, one waits


def test_the_migration_job_migrates_and_creates_the_topics() -> None:
    spec = k8s("Job", "verkosto-migrate")["spec"]["template"]["spec"]
    assert spec["restartPolicy"] == "Never"
    (migrate,) = spec["initContainers"]
    assert migrate["args"] == ["migrate"]
    (topics,) = spec["containers"]
    assert topics["args"] == ["topics"] and "command" not in topics  # the image's entrypoint: verkosto


def test_the_api_probes_point_at_routes_the_app_has() -> None:
    deployment = k8s("Deployment", "verkosto-api")
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {port["name"]: port["containerPort"] for port in container["ports"]}
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        if probe in container:
            get = container[probe]["httpGet"]
            assert routed(get["path"]), f"{probe} asks for {get['path']}, which the API does not serve"
            assert get["port"] in ports or get["port"] in ports.values()
    configured = int(k8s("ConfigMap", "verkosto")["data"]["VERKOSTO_API_PORT"])
    assert list(ports.values()) == [configured]
    service = k8s("Service", "verkosto-api")
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= set(ports) | set(ports.values())
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]
    assert not routed("/surely-not-a-route")  # the check itself can fail


def test_components_stop_within_their_grace_period() -> None:
    for label, spec in pod_specs():
        sleep = 0
        for container in containers(spec):
            command = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
            if command[:1] == ["sleep"]:
                sleep = max(sleep, int(command[1]))
        assert spec["terminationGracePeriodSeconds"] >= sleep + STOP_WITHIN_S + 1, label


def test_pods_run_as_the_images_non_root_user_on_a_read_only_root() -> None:
    uid = image_uid()
    data_dir = k8s("ConfigMap", "verkosto")["data"]["VERKOSTO_DATA_DIR"]
    for label, spec in pod_specs():
        context = spec["securityContext"]
        assert context["runAsNonRoot"] is True, label
        assert context["runAsUser"] == uid, label
        empty_dirs = {volume["name"] for volume in spec.get("volumes", []) if "emptyDir" in volume}
        for container in containers(spec):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, label
            assert security["allowPrivilegeEscalation"] is False, label
            assert security["capabilities"]["drop"] == ["ALL"], label
            assert container.get("securityContext", {}).get("runAsUser", uid) != 0, label
            writable = {m["mountPath"] for m in container.get("volumeMounts", []) if m["name"] in empty_dirs}
            assert {"/tmp", data_dir} <= writable, f"{label}: {container['name']} has nowhere to write"


def test_every_pod_takes_its_settings_from_the_configmap_and_the_secret() -> None:
    for label, spec in pod_specs():
        for container in containers(spec):
            sources = {(next(iter(s)), next(iter(s.values()))["name"]) for s in container["envFrom"]}
            assert sources == {("configMapRef", "verkosto"), ("secretRef", "verkosto")}, label
    secret = k8s("Secret", "verkosto")
    assert "VERKOSTO_DATABASE_URL" in secret["stringData"]
    assert "placeholder" in secret["stringData"]["VERKOSTO_DATABASE_URL"].lower()  # never a real one
    assert "VERKOSTO_DATABASE_URL" not in k8s("ConfigMap", "verkosto")["data"]  # secret stays secret


# Compose ------------------------------------------------------------------------------


def compose_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(COMPOSE_SCHEMA.read_text())
    # The schema says draft 2019-09 (with a trailing '#' that jsonschema does not look up).
    return jsonschema.Draft201909Validator(schema)


def test_compose_file_follows_the_compose_specification() -> None:
    errors = [f"{e.json_path}: {e.message}" for e in compose_validator().iter_errors(compose())]
    assert not errors


def test_the_compose_schema_catches_a_misspelt_key() -> None:
    broken = json.loads(json.dumps(compose()))  # YAML anchors share objects: unshare them
    broken["services"]["api"]["depends_on"]["migrate"]["condition"] = "service_finished"
    broken["services"]["ingest"]["helthcheck"] = {"disable": True}
    assert len(list(compose_validator().iter_errors(broken))) == 2


def test_compose_runs_kafka_in_kraft_mode_and_postgres_on_volumes() -> None:
    services = compose()["services"]
    kafka, postgres = services["kafka"], services["postgres"]
    assert kafka["image"].startswith("apache/kafka:")
    assert environment(kafka)["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert re.fullmatch(r"postgres:\d+", postgres["image"])
    named = set(compose()["volumes"])
    for service in (kafka, postgres):
        assert service["volumes"][0].split(":")[0] in named
        assert service["healthcheck"]["test"]


def test_compose_components_can_be_scaled_and_start_in_order() -> None:
    services = compose()["services"]
    anchor = compose()["x-verkosto-env"]
    assert anchor["VERKOSTO_TOPIC_PARTITIONS"] == "6"
    verkosto = verkosto_services()
    assert set(COMPONENTS) | {"migrate"} <= set(verkosto)
    assert services["migrate"]["command"] == ["migrate"]
    for name, service in verkosto.items():
        assert "container_name" not in service, name
        assert environment(service) == {k: str(v) for k, v in anchor.items()}, name
        assert service.get("user") in (None, "10001", "10001:10001"), name
        assert service["read_only"] is True and "/var/lib/verkosto" in service["tmpfs"], name
        ports = service.get("ports", [])
        if name == "api":
            (published,) = ports  # a host port range: every api replica gets one
            assert re.fullmatch(r"(127\.0\.0\.1:)?\d+-\d+:8000", published)
        else:
            assert not ports, f"{name} publishes a fixed host port: it could not be scaled"
    for name in COMPONENTS:
        depends = services[name]["depends_on"]
        assert depends["migrate"] == {"condition": "service_completed_successfully"}, name
        assert depends["postgres"] == {"condition": "service_healthy"}, name
        assert depends["kafka"] == {"condition": "service_healthy"}, name
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}


def test_compose_api_healthcheck_asks_readyz_and_the_image_asks_healthz() -> None:
    test = " ".join(compose()["services"]["api"]["healthcheck"]["test"])
    paths = re.findall(r"http://127\.0\.0\.1:\d+(/\w+)", test)
    assert paths == ["/readyz"] and routed("/readyz")
    (healthcheck,) = [args for op, args in final_stage() if op == "HEALTHCHECK"]
    (path,) = re.findall(r"http://127\.0\.0\.1:%s(/\w+)", healthcheck)
    assert routed(path)
    for name in ("ingest", "relay", "projector"):  # no HTTP server: the image's check is off
        assert compose()["services"][name]["healthcheck"] == {"disable": True}


# Settings -----------------------------------------------------------------------------


def variables_set_in_deploy() -> dict[str, set[str]]:
    """Every VERKOSTO_* name that deploy/ sets, by where it is set."""
    found: dict[str, set[str]] = {}

    def add(name: str, where: str) -> None:
        if name.startswith("VERKOSTO_"):
            found.setdefault(name, set()).add(where)

    for key in compose()["x-verkosto-env"]:
        add(key, "compose.yaml x-verkosto-env")
    for name, service in compose()["services"].items():
        for key in environment(service):
            add(key, f"compose.yaml {name}")
    for label, document in k8s_documents():
        if document["kind"] == "ConfigMap":
            for key in document.get("data", {}):
                add(key, label)
        if document["kind"] == "Secret":
            for key in [*document.get("stringData", {}), *document.get("data", {})]:
                add(key, label)
    for label, spec in pod_specs():
        for container in containers(spec):
            for variable in container.get("env", []):
                add(variable["name"], label)
    for line in ENV_EXAMPLE.read_text().splitlines():
        if "=" in line and not line.lstrip().startswith("#"):
            add(line.split("=", 1)[0].strip(), ENV_EXAMPLE.name)
    for key in containerfile_env():
        add(key, "Containerfile ENV")
    # Anything else that names one (comments, systemd units, interpolations) counts too.
    for path in DEPLOY.rglob("*"):
        if path.is_file() and "kafka" not in path.relative_to(DEPLOY).parts[:1] and path.suffix != ".json":
            for name in VARIABLE.findall(path.read_text()):
                add(name, str(path.relative_to(DEPLOY)))
    return found


def test_every_verkosto_variable_in_deploy_is_a_real_setting() -> None:
    found = variables_set_in_deploy()
    assert {"VERKOSTO_DATABASE_URL", "VERKOSTO_KAFKA_BOOTSTRAP", "VERKOSTO_TOPIC_PARTITIONS"} <= set(found)
    unknown = {name: sorted(where) for name, where in found.items() if name not in setting_names()}
    assert not unknown, f"not fields of services.settings.Settings (the app would ignore them): {unknown}"


def test_the_settings_check_would_catch_a_made_up_variable() -> None:
    assert "VERKOSTO_DATABASE_URL" in setting_names()
    assert "VERKOSTO_TOPIC_PARTITION" not in setting_names()


# The image ----------------------------------------------------------------------------


def image_uid() -> int:
    (user,) = [args for op, args in final_stage() if op == "USER"]
    uid = user.split(":")[0]
    assert uid.isdigit(), "USER must be numeric, or Kubernetes cannot check runAsNonRoot"
    return int(uid)


def test_the_image_is_multi_stage_and_runs_as_a_fixed_non_root_user() -> None:
    instructions = containerfile_instructions()
    stages = [args for op, args in instructions if op == "FROM"]
    assert len(stages) >= 2 and stages[-1] == "python:3.11-slim"
    assert image_uid() != 0
    final = final_stage()
    operations = [op for op, _ in final]
    assert operations.index("USER") < operations.index("ENTRYPOINT")
    assert not any(op == "COPY" for op, _ in final), "the final stage installs the wheels, no source tree"
    (install,) = [args for op, args in final if op == "RUN" and "pip install" in args]
    assert "from=builder" in install and "--no-index" in install
    assert not any("build-essential" in args or "gcc" in args for op, args in final if op == "RUN")
    entrypoint = [json.loads(args) for op, args in final if op == "ENTRYPOINT"]
    command = [json.loads(args) for op, args in final if op == "CMD"]
    assert entrypoint == [["verkosto"]] and command == [["run", "api"]]
    assert ("EXPOSE", "8000") in final
    assert containerfile_env()["VERKOSTO_API_HOST"] == "0.0.0.0"


def test_the_build_context_keeps_only_what_the_wheel_needs() -> None:
    ignore = (DEPLOY / "Containerfile.dockerignore").read_text().split()
    assert "*" in ignore
    for needed in ("!pyproject.toml", "!README.md", "!domain/", "!services/", "!projections/"):
        assert needed in ignore
