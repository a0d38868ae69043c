"""The deployment artefacts, checked offline: the Kubernetes manifests and the lock files.

Every resource under deploy/k8s, in the base and in each overlay as kustomize renders it,
must be valid for the pinned Kubernetes version (kubernetes-validate bundles the JSON
schemas; strict, so an unknown or misspelt field fails) and keep what the image and the
service need: the Dockerfile's user, a read-only root filesystem with a volume for each
folder the service writes, the health probes, and environment variables that are
``Settings`` fields the service accepts. The overlays are rendered by ``kustomize build``
or ``kubectl kustomize``; without either their tests are skipped, unless
``K8S_REQUIRE_KUSTOMIZE=1`` (``make k8s-validate``, CI) makes that a failure.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import Any

import kubernetes_validate
import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
# The oldest Kubernetes release the manifests promise to apply to.
KUBERNETES_VERSION = "1.33.0"
TARGETS = sorted(str(path.parent.relative_to(K8S)) for path in K8S.rglob("kustomization.yaml"))
OVERLAYS = [t for t in TARGETS if t.startswith("overlays/") and not t.endswith("/bootstrap")]
POD_KINDS = {"Deployment", "Job"}
COMMANDS = {
    "api": ["loyalty", "serve"],
    "migrate": ["loyalty", "migrate"],
    "bootstrap": ["loyalty", "keys", "create", "--role", "admin", "--name", "bootstrap-admin"],
}
PLACEHOLDER = "CHANGE-ME"

Doc = dict[str, Any]


# ---------------------------------------------------------------- loading and rendering


def _load(path: Path) -> list[Doc]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc is not None]


def _kustomization(target: str) -> Doc:
    (doc,) = _load(K8S / target / "kustomization.yaml")
    return doc


def _renderer() -> list[str] | None:
    if found := shutil.which("kustomize"):
        return [found, "build"]
    if found := shutil.which("kubectl"):
        return [found, "kustomize"]
    return None


@functools.cache
def _rendered(target: str) -> tuple[Doc, ...]:
    """The target's resources as kustomize renders them; a kustomization that only lists
    files (and labels) is read directly where no renderer is installed."""
    command = _renderer()
    if command is not None:
        out = subprocess.run(
            [*command, str(K8S / target)], capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, f"{' '.join(command)} {target}:\n{out.stderr}"
        return tuple(doc for doc in yaml.safe_load_all(out.stdout) if doc is not None)
    kustomization = _kustomization(target)
    files = [K8S / target / name for name in kustomization.get("resources", [])]
    if set(kustomization) <= {"apiVersion", "kind", "labels", "resources"} and all(
        path.is_file() for path in files
    ):
        return tuple(doc for path in files for doc in _load(path))
    if os.environ.get("K8S_REQUIRE_KUSTOMIZE") == "1":
        pytest.fail("K8S_REQUIRE_KUSTOMIZE=1 but neither kustomize nor kubectl is on PATH")
    pytest.skip(f"{target} needs kustomize: neither kustomize nor kubectl is on PATH")


def _one(docs: tuple[Doc, ...], kind: str) -> Doc | None:
    found = [doc for doc in docs if doc["kind"] == kind]
    assert len(found) <= 1, f"more than one {kind}"
    return found[0] if found else None


def _pods(docs: tuple[Doc, ...]) -> Iterator[tuple[Doc, Doc]]:
    """(workload, pod template) of every Deployment and Job."""
    for doc in docs:
        if doc["kind"] in POD_KINDS:
            yield doc, doc["spec"]["template"]


def _containers(pod: Doc) -> list[Doc]:
    spec = pod["spec"]
    return [*spec.get("initContainers", []), *spec["containers"]]


def _config(target: str) -> tuple[Doc, Doc]:
    """The ConfigMap and Secret the target's pods read. A bootstrap/ folder uses the
    ConfigMap of the kustomization above it; the Secret's keys are the base's (the
    overlays leave its placeholder out: the real one is made in the cluster)."""
    for where in (target, str(PurePosixPath(target).parent)):
        if (config := _one(_rendered(where), "ConfigMap")) is not None:
            secret = _one(_rendered("base"), "Secret")
            assert secret is not None, "base/ has no Secret"
            return config, secret
    raise AssertionError(f"{target}: no ConfigMap for its pods")


def _environment(target: str, container: Doc) -> dict[str, str]:
    """The variables a container gets from the manifests (envFrom, then env)."""
    config, secret = _config(target)
    sources = {("configMapRef", config["metadata"]["name"]): config.get("data", {})}
    sources[("secretRef", secret["metadata"]["name"])] = secret.get("stringData", {})
    env: dict[str, str] = {}
    for source in container.get("envFrom", []):
        ((ref, named),) = source.items()
        assert (ref, named["name"]) in sources, f"{container['name']}: unknown {ref} {named}"
        env.update(sources[(ref, named["name"])])
    env.update({var["name"]: var["value"] for var in container.get("env", [])})
    return env


@functools.cache
def _dockerfile(pattern: str) -> str:
    found = re.search(pattern, (ROOT / "Dockerfile").read_text())
    assert found, f"the Dockerfile has no {pattern!r}"
    return found.group(1)


# ---------------------------------------------------------------- the files themselves


def test_every_file_is_named_by_a_kustomization() -> None:
    named: set[Path] = set()
    for target in TARGETS:
        kustomization = _kustomization(target)
        entries = [*kustomization.get("resources", [])]
        entries += [patch["path"] for patch in kustomization.get("patches", []) if "path" in patch]
        for entry in entries:
            path = (K8S / target / entry).resolve()
            assert path.exists(), f"{target}/kustomization.yaml names a missing {entry}"
            named.add(path)
    files = {p.resolve() for p in K8S.rglob("*.y*ml") if p.name != "kustomization.yaml"}
    assert files - named == set(), "YAML files no kustomization uses"
    assert TARGETS, "no kustomization under deploy/k8s"
    assert OVERLAYS == ["overlays/production", "overlays/staging"]


@pytest.mark.parametrize(
    "path",
    sorted(
        str(p.relative_to(K8S))
        for t in TARGETS
        for p in (K8S / t / r for r in _kustomization(t).get("resources", []))
        if p.is_file()
    ),
)
def test_each_resource_file_is_valid(path: str) -> None:
    for doc in _load(K8S / path):
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_patches_name_base_resources(overlay: str) -> None:
    base = {(d["kind"], d["metadata"]["name"]) for d in _rendered("base")}
    for patch in _kustomization(overlay).get("patches", []):
        for doc in _load(K8S / overlay / patch["path"]):
            assert (doc["kind"], doc["metadata"]["name"]) in base, f"{overlay}: {patch}"


# ---------------------------------------------------------------- as kustomize renders them


@pytest.mark.parametrize("target", TARGETS)
def test_rendered_resources_are_valid(target: str) -> None:
    docs = _rendered(target)
    assert docs
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("target", TARGETS)
def test_pods_run_as_the_image_user_with_a_read_only_root(target: str) -> None:
    uid = int(_dockerfile(r"useradd [^\n]*--uid (\d+)"))
    pods = list(_pods(_rendered(target)))
    assert pods
    for workload, pod in pods:
        where = f"{target}: {workload['kind']} {workload['metadata']['name']}"
        spec = pod["spec"]
        assert spec["securityContext"]["runAsNonRoot"] is True, where
        assert spec["securityContext"]["runAsUser"] == uid, where
        assert spec.get("automountServiceAccountToken") is False, where
        for container in _containers(pod):
            security = container["securityContext"]
            assert security["readOnlyRootFilesystem"] is True, (where, container["name"])
            assert security["allowPrivilegeEscalation"] is False, (where, container["name"])
            assert security["capabilities"] == {"drop": ["ALL"]}, (where, container["name"])
            assert security.get("runAsUser", uid) == uid, (where, container["name"])
            resources = container["resources"]
            for kind in ("requests", "limits"):
                assert set(resources[kind]) == {"cpu", "memory"}, (where, container["name"])


def _volume_over(path: str, pod: Doc, container: Doc) -> tuple[str, Doc]:
    """The mount point and the emptyDir volume that hold ``path`` in ``container``."""
    volumes = {v["name"]: v for v in pod["spec"].get("volumes", [])}
    for mount in container.get("volumeMounts", []):
        point = PurePosixPath(mount["mountPath"])
        if PurePosixPath(path) == point or point in PurePosixPath(path).parents:
            volume = volumes[mount["name"]]
            assert "emptyDir" in volume, f"{path} is on {volume}, not an emptyDir"
            return str(point), volume
    raise AssertionError(f"{container['name']}: nothing writable at {path}")


@pytest.mark.parametrize("target", TARGETS)
def test_every_folder_the_service_writes_is_a_volume(target: str) -> None:
    numba_cache = _dockerfile(r"NUMBA_CACHE_DIR=(\S+)")
    for _, pod in _pods(_rendered(target)):
        for container in pod["spec"]["containers"]:
            env = _environment(target, container)
            _volume_over("/tmp", pod, container)
            _volume_over(env["LOYALTY_DATA_DIR"], pod, container)
            if container["command"] != COMMANDS["api"]:
                continue
            # `loyalty serve` deletes and re-creates the metrics folder: not a mount point.
            point, _ = _volume_over(env["LOYALTY_METRICS_DIR"], pod, container)
            assert point != env["LOYALTY_METRICS_DIR"]
            # Numba refuses (and fails at import) a cache folder it cannot write to; an
            # init container fills the volume with the cache the image compiled.
            point, volume = _volume_over(numba_cache, pod, container)
            assert point == numba_cache
            seeds = [
                init
                for init in pod["spec"].get("initContainers", [])
                if numba_cache in " ".join(init["command"])
                and any(m["name"] == volume["name"] for m in init.get("volumeMounts", []))
            ]
            assert seeds, "no init container copies the image's numba cache into the volume"


@pytest.mark.parametrize("target", TARGETS)
def test_each_workload_runs_its_command(target: str) -> None:
    for workload, pod in _pods(_rendered(target)):
        component = workload["metadata"]["labels"]["app.kubernetes.io/component"]
        assert pod["metadata"]["labels"]["app.kubernetes.io/component"] == component
        assert pod["spec"]["containers"][-1]["command"] == COMMANDS[component]
        images = {c["image"] for c in _containers(pod)}
        assert len(images) == 1 and images.pop().split(":")[0].endswith("loyalty-engine")


@pytest.mark.parametrize("target", [t for t in TARGETS if not t.endswith("bootstrap")])
def test_the_api_probes_healthz_and_readyz_on_its_port(target: str) -> None:
    deployment = _one(_rendered(target), "Deployment")
    assert deployment is not None
    (container,) = deployment["spec"]["template"]["spec"]["containers"]
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"http": int(_environment(target, container)["LOYALTY_PORT"])}
    paths = {
        probe: (container[probe]["httpGet"]["path"], container[probe]["httpGet"]["port"])
        for probe in ("startupProbe", "livenessProbe", "readinessProbe")
    }
    assert paths == {
        "startupProbe": ("/healthz", "http"),
        "livenessProbe": ("/healthz", "http"),
        "readinessProbe": ("/readyz", "http"),
    }


@pytest.mark.parametrize("target", [t for t in TARGETS if not t.endswith("bootstrap")])
def test_service_hpa_and_pdb_select_the_api(target: str) -> None:
    docs = _rendered(target)
    deployment, service = _one(docs, "Deployment"), _one(docs, "Service")
    hpa, pdb = _one(docs, "HorizontalPodAutoscaler"), _one(docs, "PodDisruptionBudget")
    assert deployment and service and hpa and pdb
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    selected = deployment["spec"]["selector"]["matchLabels"]
    assert selected.items() <= labels.items()
    assert service["spec"]["selector"] == selected
    assert pdb["spec"]["selector"]["matchLabels"] == selected
    ports = deployment["spec"]["template"]["spec"]["containers"][0]["ports"]
    assert {p["targetPort"] for p in service["spec"]["ports"]} <= {p["name"] for p in ports}
    scaled = hpa["spec"]["scaleTargetRef"]
    assert (scaled["kind"], scaled["name"]) == ("Deployment", deployment["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    assert deployment["spec"]["replicas"] == hpa["spec"]["minReplicas"]
    assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]


@pytest.mark.parametrize("target", TARGETS)
def test_the_environment_is_settings_the_service_accepts(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    fields = {f"LOYALTY_{name.upper()}" for name in Settings.model_fields}
    config, secret = _config(target)
    assert config["data"]["LOYALTY_ENVIRONMENT"] == "production"
    assert (config["data"]["LOYALTY_HOST"], config["data"]["LOYALTY_PORT"]) == ("0.0.0.0", "8000")
    assert set(secret["stringData"]) == {"LOYALTY_DATABASE_URL", "LOYALTY_REDIS_URL"}
    assert all(PLACEHOLDER in value for value in secret["stringData"].values()), (
        "base/secret.yaml holds placeholders only: real values live in the cluster"
    )
    for _, pod in _pods(_rendered(target)):
        for container in _containers(pod):
            env = _environment(target, container)
            assert set(env) <= fields, f"{container['name']}: not Settings fields"
            if container["command"][0] != "loyalty":
                continue
            for name in [n for n in os.environ if n.startswith("LOYALTY_")]:
                monkeypatch.delenv(name)
            for name, value in env.items():
                monkeypatch.setenv(name, value)
            assert Settings().environment == "production"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_never_apply_the_placeholder_secret(overlay: str) -> None:
    for target in (overlay, f"{overlay}/bootstrap"):
        assert _one(_rendered(target), "Secret") is None, f"{target} would overwrite it"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_bootstrap_has_its_overlays_namespace_and_image(overlay: str) -> None:
    main, bootstrap = _kustomization(overlay), _kustomization(f"{overlay}/bootstrap")
    assert bootstrap["namespace"] == main["namespace"]
    assert bootstrap["images"] == main["images"]
    assert bootstrap["resources"] == ["../../../base/bootstrap"]


# ---------------------------------------------------------------- the lock files


def _pins(lock: str) -> dict[str, set[str]]:
    pins: dict[str, set[str]] = {}
    for name, version in re.findall(
        r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)",
        (ROOT / lock).read_text(),
        flags=re.MULTILINE,
    ):
        pins.setdefault(canonicalize_name(name), set()).add(version)
    return pins


@pytest.mark.parametrize(
    ("lock", "extras"),
    [("requirements.lock", ()), ("requirements-dev.lock", ("embedded", "dev"))],
)
def test_the_lock_pins_every_dependency(lock: str, extras: tuple[str, ...]) -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    wanted = [*project["dependencies"]]
    wanted += [req for extra in extras for req in project["optional-dependencies"][extra]]
    pins = _pins(lock)
    text = (ROOT / lock).read_text()
    assert "--hash=sha256:" in text, f"{lock} has no hashes"
    for line in wanted:
        requirement = Requirement(line)
        versions = pins.get(canonicalize_name(requirement.name), set())
        assert any(requirement.specifier.contains(v, prereleases=True) for v in versions), (
            f"{lock} does not pin {line} (has {versions or 'nothing'}): run `make lock`"
        )
