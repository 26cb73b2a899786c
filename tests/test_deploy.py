"""The deployment recipes in ``deploy/`` (Slurm, Kubernetes), checked as far as an offline machine can.

Nothing here talks to Slurm, Kubernetes or Docker: the Slurm script prints its
job script, ``make_spec.py`` prints its DaskCluster, the hand-written YAML is
compared with it, the CRD patch is applied to the CRDs that ship inside the
dask-kubernetes package, and the Dockerfile is read as text. The tests that run
a script take a few seconds each (a local Dask scheduler, or importing
dask-kubernetes), so they stay in the fast suite.
"""

from __future__ import annotations

import copy
import functools
import importlib.metadata
import importlib.util
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

yaml = pytest.importorskip("yaml")

ROOT = Path(__file__).resolve().parents[1]
SLURM_SCRIPT = ROOT / "deploy" / "slurm" / "grade_on_slurm.py"
K8S = ROOT / "deploy" / "kubernetes"
DOC = ROOT / "docs" / "scale.md"

#: The worker container's securityContext that docs/scale.md explains, setting by setting.
WORKER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "procMount": "Unmasked",
    "seccompProfile": {"type": "Unconfined"},
    "appArmorProfile": {"type": "Unconfined"},
}
#: Setting names the doc's table must name (and the spec must carry).
DOC_SETTINGS = ("hostUsers", "procMount", "Unmasked", "seccompProfile", "appArmorProfile", "Unconfined",
                "Localhost", "user.max_user_namespaces", "kernel.unprivileged_userns_clone",
                "kernel.apparmor_restrict_unprivileged_userns")


def _load(path: Path, name: str):
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _run(*argv: str, env: dict | None = None) -> str:
    proc = subprocess.run([sys.executable, *argv], capture_output=True, text=True, timeout=120, cwd=ROOT, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# ---------------------------------------------------------------------------
# Slurm (dask-jobqueue)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slurm():
    return _load(SLURM_SCRIPT, "grade_on_slurm")


@pytest.fixture(scope="module")
def job_script() -> str:
    """``--print-job-script`` (it starts a local scheduler for the address, submits nothing)."""
    pytest.importorskip("dask_jobqueue")
    return _run(str(SLURM_SCRIPT), "--print-job-script", "--partition", "short", "--account", "cs123",
                "--processes", "8", "--memory-per-worker", "3GiB", "--walltime", "01:00:00",
                "--venv", "/opt/course/.venv", "--job-extra=--qos=teaching")


def _worker_command(script: str) -> list[str]:
    lines = [line for line in script.splitlines() if "distributed.cli.dask_worker" in line]
    assert len(lines) == 1, script
    return shlex.split(lines[0], posix=False)


def test_job_script_has_the_slurm_header(job_script):
    assert job_script.startswith("#!/usr/bin/env bash")
    for directive in ("#SBATCH -J cnn-grader", "#SBATCH -p short", "#SBATCH -A cs123", "#SBATCH -n 1",
                      "#SBATCH --cpus-per-task=8", "#SBATCH --mem=24G", "#SBATCH -t 01:00:00",
                      "#SBATCH --qos=teaching"):
        assert directive in job_script.splitlines(), directive


def test_job_script_activates_the_venv_before_the_worker(job_script):
    lines = job_script.splitlines()
    activate = lines.index("source /opt/course/.venv/bin/activate")
    worker = next(i for i, line in enumerate(lines) if "dask_worker" in line)
    assert activate < worker


def test_worker_command_runs_one_thread_per_process(job_script):
    """The part of the worker command that does not depend on the scheduler's address."""
    argv = _worker_command(job_script)
    assert argv[:3] == ["/opt/course/.venv/bin/python", "-m", "distributed.cli.dask_worker"]
    assert re.fullmatch(r"tcp://[^\s:]+:\d+", argv[3]), argv[3]
    rest = argv[4:]

    def value(flag: str) -> str:
        assert flag in rest, (flag, rest)
        return rest[rest.index(flag) + 1]

    assert value("--nthreads") == "1"
    assert value("--nworkers") == "8"
    assert value("--memory-limit") == "3.00GiB"
    assert value("--local-directory") == "${TMPDIR:-/tmp}"
    assert value("--lifetime") == "3300s"  # five minutes before the one-hour walltime
    assert value("--lifetime-stagger") == "2m"
    assert "--nanny" in rest


def test_queue_and_account_come_from_the_environment(slurm, monkeypatch):
    pytest.importorskip("dask")
    monkeypatch.setenv("CNN_SLURM_PARTITION", "gpu-teaching")
    monkeypatch.setenv("CNN_SLURM_ACCOUNT", "cs999")
    kwargs = slurm.cluster_kwargs(slurm.build_parser().parse_args(["--processes", "2"]))
    assert (kwargs["queue"], kwargs["account"]) == ("gpu-teaching", "cs999")
    assert (kwargs["cores"], kwargs["processes"], kwargs["memory"]) == (2, 2, "8.00GiB")
    # The command line wins over the environment.
    kwargs = slurm.cluster_kwargs(slurm.build_parser().parse_args(["--partition", "short"]))
    assert kwargs["queue"] == "short"


@pytest.mark.parametrize(("text", "seconds"), [("90", 5400), ("30:00", 1800), ("02:00:00", 7200),
                                                ("1-00", 86400), ("1-01:30", 91800), ("0-00:10:05", 605)])
def test_slurm_time_limits(slurm, text, seconds):
    assert slurm.walltime_seconds(text) == seconds


def test_short_jobs_still_get_a_lifetime(slurm):
    assert slurm.worker_lifetime("10") == "540s"
    assert slurm.worker_lifetime("00:00:30") == "60s"


def test_grading_is_handed_to_cnn_grade_with_the_dask_engine(slurm):
    args = slurm.build_parser().parse_args(["--assignment", "train_cnn", "--", "--allow-no-sandbox"])
    assert slurm.grade_argv(args, "tcp://10.0.0.5:8786") == [
        "--engine", "dask", "--scheduler", "tcp://10.0.0.5:8786", "--assignment", "train_cnn",
        "--allow-no-sandbox"]


# ---------------------------------------------------------------------------
# Kubernetes (Dask operator)
# ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def make_spec():
    pytest.importorskip("dask_kubernetes.operator")
    return _load(K8S / "make_spec.py", "make_spec")


@pytest.fixture(scope="module")
def printed_spec() -> dict:
    """``make_spec.py`` run as a script, with its defaults."""
    pytest.importorskip("dask_kubernetes.operator")
    return yaml.safe_load(_run(str(K8S / "make_spec.py")))


@pytest.fixture(scope="module")
def yaml_docs() -> list[dict]:
    return list(yaml.safe_load_all((K8S / "daskcluster.yaml").read_text()))


def _worker_pod(spec: dict) -> dict:
    return spec["spec"]["worker"]["spec"]


def _worker_container(spec: dict) -> dict:
    (container,) = _worker_pod(spec)["containers"]
    return container


def test_printed_spec_is_a_daskcluster_with_single_threaded_workers(printed_spec):
    assert printed_spec["apiVersion"] == "kubernetes.dask.org/v1"
    assert printed_spec["kind"] == "DaskCluster"
    args = _worker_container(printed_spec)["args"]
    assert args[:2] == ["dask", "worker"]
    assert args[args.index("--nthreads") + 1] == "1"
    assert args[args.index("--nworkers") + 1] == "1"


def test_printed_spec_has_the_security_settings_the_doc_names(printed_spec):
    assert _worker_container(printed_spec)["securityContext"] == WORKER_SECURITY
    pod = _worker_pod(printed_spec)
    assert pod["hostUsers"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True


def test_commands_exist_in_the_pinned_distributed(printed_spec):
    """distributed no longer installs dask-worker / dask-scheduler scripts; the spec uses `dask ...`."""
    scripts = {ep.name for ep in importlib.metadata.entry_points(group="console_scripts")}
    assert "dask" in scripts
    scheduler_args = printed_spec["spec"]["scheduler"]["spec"]["containers"][0]["args"]
    assert scheduler_args[:2] == ["dask", "scheduler"]
    used = {_worker_container(printed_spec)["args"][0], scheduler_args[0]}
    assert used <= scripts


def test_localhost_profiles_replace_unconfined(make_spec):
    spec = make_spec.build_spec(seccomp_localhost="profiles/cnn-bwrap.json", apparmor_localhost="cnn-bwrap")
    security = _worker_container(spec)["securityContext"]
    assert security["seccompProfile"] == {"type": "Localhost", "localhostProfile": "profiles/cnn-bwrap.json"}
    assert security["appArmorProfile"] == {"type": "Localhost", "localhostProfile": "cnn-bwrap"}
    assert security["procMount"] == "Unmasked"
    assert _worker_pod(spec)["hostUsers"] is False


def test_yaml_parses_and_matches_make_spec(yaml_docs, printed_spec):
    namespace, cluster = yaml_docs
    assert namespace["kind"] == "Namespace"
    assert cluster == printed_spec


def test_yaml_has_the_same_security_settings(yaml_docs):
    namespace, cluster = yaml_docs
    assert _worker_container(cluster)["securityContext"] == WORKER_SECURITY
    assert _worker_pod(cluster)["hostUsers"] is False
    assert cluster["metadata"]["namespace"] == namespace["metadata"]["name"]
    # Unconfined seccomp and AppArmor are admitted by the Privileged standard only.
    assert namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"] == "privileged"


def _unknown_fields(value, schema: dict, path: str = "") -> set[str]:
    """Fields of ``value`` that a structural CRD schema does not list (the API server would drop them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return set()
    if isinstance(value, dict):
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        found: set[str] = set()
        for key, item in value.items():
            if props is not None and key in props:
                found |= _unknown_fields(item, props[key], f"{path}.{key}")
            elif isinstance(extra, dict):
                found |= _unknown_fields(item, extra, f"{path}.{key}")
            else:
                found.add(f"{path}.{key}")
        return found
    if isinstance(value, list) and "items" in schema:
        return set().union(*(_unknown_fields(item, schema["items"], f"{path}[]") for item in value))
    return set()


def _json_patch_add(document: dict, patch: list[dict]) -> dict:
    """RFC 6902 ``add`` (the only operation the patch file uses)."""
    for op in patch:
        assert op["op"] == "add"
        *parents, last = op["path"].lstrip("/").split("/")
        node = document
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = op["value"]
    return document


@functools.cache
def _crd_text(name: str) -> str:
    operator = pytest.importorskip("dask_kubernetes.operator")
    crds = Path(operator.__file__).parent / "deployment" / "helm" / "dask-kubernetes-operator" / "crds"
    return (crds / name).read_text()


@functools.cache
def _parsed_crd(name: str) -> dict:
    return yaml.load(_crd_text(name), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def _operator_crd(name: str) -> dict:
    """A CRD as shipped inside the dask-kubernetes package (a copy: the tests patch it)."""
    return copy.deepcopy(_parsed_crd(name))


def _worker_schema(crd: dict) -> dict:
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    return spec["properties"]["worker"]["properties"]["spec"]


@pytest.mark.parametrize("crd", ["daskcluster.yaml", "daskworkergroup.yaml"])
def test_crd_patch_lets_the_worker_settings_through(crd, yaml_docs):
    """The operator's CRDs embed an old PodSpec; after the patch nothing in our worker spec is pruned."""
    definition = _operator_crd(crd)
    worker = _worker_pod(yaml_docs[1])
    before = _unknown_fields(worker, _worker_schema(definition))
    # What the patch is for (empty once dask-kubernetes ships a newer PodSpec schema).
    assert before <= {".hostUsers", ".containers[].securityContext.appArmorProfile"}
    patch = json.loads((K8S / "crd-podspec-patch.json").read_text())
    patched = _json_patch_add(definition, patch)
    assert _unknown_fields(worker, _worker_schema(patched)) == set()


def test_only_the_two_patched_fields_are_missing_from_the_crd(yaml_docs):
    """The scheduler part and everything else already fit the operator's schema as shipped."""
    schema = _operator_crd("daskcluster.yaml")["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    unknown = _unknown_fields(yaml_docs[1]["spec"], schema["properties"]["spec"], "spec")
    assert unknown <= {"spec.worker.spec.hostUsers", "spec.worker.spec.containers[].securityContext.appArmorProfile"}


def test_dockerfile_installs_bubblewrap_and_the_pinned_requirements(yaml_docs):
    text = (K8S / "Dockerfile").read_text()
    steps = [line.strip() for line in re.sub(r"\\\n", " ", text).splitlines() if line.strip()
             and not line.lstrip().startswith("#")]
    assert steps[0].startswith("FROM python:3.11-slim-bookworm")
    assert any("apt-get install" in s and re.search(r"\bbubblewrap\b", s) for s in steps)
    assert "COPY requirements.txt constraints.txt ./" in steps
    assert any("pip install -r requirements.txt -c constraints.txt" in s for s in steps)
    pins = (ROOT / "requirements.txt").read_text().splitlines()
    assert "dask==2026.8.0" in pins and "distributed==2026.8.0" in pins
    assert any("pip install --no-deps ." in s for s in steps)
    # The repository root holds the gradebook and submissions: never copy it whole.
    assert not any(re.match(r"COPY\s+\.\s", s) for s in steps)
    # It runs as the uid the pods ask for.
    user = [s.split()[1] for s in steps if s.startswith("USER ")]
    assert user == [str(_worker_pod(yaml_docs[1])["securityContext"]["runAsUser"])]


def test_doc_names_every_setting_and_gives_the_measured_table():
    text = DOC.read_text()
    for setting in DOC_SETTINGS:
        assert setting in text, setting
    for section in ("## Grading on many machines with Dask", "## Slurm (dask-jobqueue)",
                    "## Kubernetes (Dask operator)", "## The worker environment",
                    "## Bubblewrap inside containers", "## Back-of-envelope"):
        assert section in text.splitlines(), section
    envelope = text.split("## Back-of-envelope", 1)[1]
    for row in ("| stock nbgrader, serial", "| hardened, local workers", "| hardened, Dask LocalCluster"):
        assert row in envelope, row
    assert "cores for 10,000 in an hour" in envelope and "make bench" in envelope
