"""Fixtures of the Kubernetes scenarios (run by e2e/k8s/run.sh, which starts the control plane
and the kubelet stand-in and sets the environment that harness.py describes).

    kube            the API client (kube.Kube) with the admin kubeconfig
    kubelet         the stand-in's control API (harness.KubeletControl): state, lose/restore node
    operator_chart  the chart installed once (CRDs, RBAC; its Deployment at replicaCount=0)
    measure         `measure(name, value, unit)`: figures printed at the end (e2e/lib/measure.py)
    operator        the operator as a host process (harness.OperatorProcess), started once;
                    a test may kill and restart it (it is started again after a test that
                    left it dead)

A failed test prints what explains it: the operator's log, the pods and the stand-in's view,
and the last lines of each broker container.
"""

import gc

import pytest

from broker import pytest_runtest_makereport  # noqa: F401 - keeps each phase's report
from harness import (CHART, KubeletControl, OperatorProcess, docker_logs, helm, kubectl,
                     wait_until)
from kube import Kube
from measure import measure, pytest_terminal_summary  # noqa: F401 - MEASURE lines at the end

OPERATOR_NAMESPACE = "ironlog-system"
RELEASE = "ironlog-operator"
CRDS = ("crd/kafkaclusters.ironlog.dev", "crd/kafkatopics.ironlog.dev",
        "crd/kafkausers.ironlog.dev")


@pytest.fixture(scope="session", autouse=True)
def collect_in_the_main_thread():
    """No automatic garbage collection: a collection runs in whatever thread allocates at
    that moment, and a confluent-kafka client freed by it in a thread other than its own can
    crash the interpreter (confluent-kafka-python#1761; pytest died with SIGSEGV in two
    runs of the roll scenario). Cycles are collected between tests, in this thread."""
    gc.disable()
    yield
    gc.enable()


@pytest.fixture(autouse=True)
def collect_between_tests():
    yield
    gc.collect()


@pytest.fixture(scope="session")
def kube():
    return Kube()


@pytest.fixture(scope="session")
def kubelet():
    control = KubeletControl()
    wait_until(control.healthy, "the kubelet stand-in's nodes registered", timeout=60)
    return control


@pytest.fixture(scope="session")
def operator_chart():
    """The chart with the operator Deployment scaled to 0: it supplies the CRDs, RBAC and the
    rest; the operator under test runs on the host with the admin kubeconfig."""
    helm("install", RELEASE, str(CHART), "--namespace", OPERATOR_NAMESPACE, "--create-namespace",
         "--set", "replicaCount=0", "--set", "serviceMonitor.enabled=false")
    kubectl("wait", "--for=condition=Established", *CRDS, "--timeout=60s")
    return RELEASE


@pytest.fixture(scope="session")
def operator(operator_chart):
    op = OperatorProcess().start()
    op.wait_healthy()
    yield op
    op.stop()


@pytest.fixture(autouse=True)
def operator_revived(request):
    """A test that killed the operator leaves it running again for the next one."""
    yield
    if "operator" in request.fixturenames:
        op = request.getfixturevalue("operator")
        if not op.alive():
            op.start()
            op.wait_healthy()


@pytest.fixture(autouse=True)
def diagnostics(request):
    yield
    report = getattr(request.node, "rep_call", None)
    if report is None or not report.failed:
        return
    print("\n===== pods =====")
    print(kubectl("get", "pods", "-A", "-o", "wide", check=False))
    print("===== KafkaClusters, KafkaTopics, KafkaUsers =====")
    print(kubectl("get", "kc,kt,ku", "-A", "-o", "wide", check=False))
    try:
        state = KubeletControl().state()
    except (AssertionError, OSError) as e:
        print(f"kubelet stand-in state unavailable: {e}")
        state = {"pods": {}}
    for key, pod in sorted(state["pods"].items()):
        print(f"===== {key} on {pod['node']}: {pod} =====")
        print(docker_logs(pod["container"], tail=40))
    print("===== operator log (last lines) =====")
    print(OperatorProcess().log_tail(80))
