"""playbooks/scale.yml: prod scales numberOfInstances and waits for the pods; dev is refused.

The prod cluster is shared with the other day-2 tests: every test here puts the number of
instances back to what it found (the inventory's 3) before it ends.
"""

from __future__ import annotations

from collections import Counter

import pytest

from .helpers import DEV, NAMESPACE, PROD, Deployment, flat, output, recap

CLUSTER = "postgres-cluster"
SELECTOR = f"application=spilo,cluster-name={CLUSTER}"


def cluster_figures(deployment: Deployment) -> dict:
    """What the cluster looks like now: the resource's spec and status, the StatefulSet, the pods' roles."""
    resource = deployment.kubectl_json("get", "postgresql", CLUSTER, "-n", NAMESPACE)
    sts = deployment.kubectl_json("get", "statefulset", CLUSTER, "-n", NAMESPACE)
    pods = deployment.kubectl_json("get", "pods", "-n", NAMESPACE, "-l", SELECTOR)["items"]
    return {
        "instances": resource["spec"]["numberOfInstances"],
        "status": resource.get("status", {}).get("PostgresClusterStatus"),
        "generation": resource["metadata"]["generation"],
        "sts_replicas": sts["spec"]["replicas"],
        "sts_ready": sts["status"].get("readyReplicas", 0),
        "roles": Counter(pod["metadata"]["labels"].get("spilo-role") for pod in pods),
        "pods": sorted(pod["metadata"]["name"] for pod in pods),
    }


def scale(deployment: Deployment, instances, *args: str):
    return deployment.run("scale", *args, extra_vars={"instances": instances})


@PROD
@pytest.mark.parametrize("given", [0, 11, "abc", "2.5"])
def test_out_of_bounds_or_not_a_whole_number_is_refused(prod_deployment: Deployment, given):
    before = cluster_figures(prod_deployment)
    proc = scale(prod_deployment, given)
    text = flat(proc)
    assert proc.returncode != 0, text[-3000:]
    assert "instances must be a whole number from 1 to 10 (the maximum is postgres_prod_max_instances)" in text, text[-3000:]
    assert f"given: {given!r}".replace("'", '"') in text, text[-3000:]
    assert "Nothing was changed" in text
    assert cluster_figures(prod_deployment) == before


@PROD
def test_missing_instances_is_refused_naming_it(prod_deployment: Deployment):
    proc = prod_deployment.run("scale")
    assert proc.returncode != 0
    assert "missing required arguments: instances" in output(proc), output(proc)[-3000:]


@PROD
def test_scale_up_rerun_check_mode_and_back(prod_deployment: Deployment):
    """3 -> 4: the resource, the StatefulSet and the pods show 4 with one master; a re-run changes
    nothing; check mode says what it would do and changes nothing; then back to 3."""
    before = cluster_figures(prod_deployment)
    assert before["instances"] == 3 and before["roles"] == Counter(master=1, replica=2), before
    up = before["instances"] + 1
    try:
        proc = scale(prod_deployment, up)
        text = flat(proc)
        assert proc.returncode == 0, text[-6000:]
        assert recap(proc)[prod_deployment.host]["changed"] == 1, text[-3000:]
        after = cluster_figures(prod_deployment)
        assert after["instances"] == up and after["sts_replicas"] == up and after["sts_ready"] == up, after
        assert after["roles"] == Counter(master=1, replica=up - 1), after
        assert after["pods"] == [f"{CLUSTER}-{index}" for index in range(up)]
        assert after["status"] == "Running"
        assert f"postgresql {NAMESPACE}/{CLUSTER}: scaled from 3 to 4 instances, status Running" in text, text[-3000:]
        assert f"StatefulSet {CLUSTER}: 4/4 ready" in text
        assert f"pod {CLUSTER}-0: master, Ready" in text and f"pod {CLUSTER}-3: replica, Ready" in text
        assert "IMPORTANT: postgres_prod_instances is 3 in the inventory" in text
        assert "Set it to 4, or the next playbooks/deploy.yml puts 3 instances back" in text
        kubectl_line = prod_deployment.kubectl("get", "postgresql", CLUSTER, "-n", NAMESPACE).stdout
        assert " 4 " in kubectl_line.splitlines()[1], kubectl_line

        again = scale(prod_deployment, up)
        assert again.returncode == 0, output(again)[-3000:]
        assert recap(again)[prod_deployment.host]["changed"] == 0
        assert "already at 4 instances, status Running" in flat(again)
        assert cluster_figures(prod_deployment)["generation"] == after["generation"]

        check = scale(prod_deployment, 2, "--check")
        check_text = flat(check)
        assert check.returncode == 0, check_text[-3000:]
        assert f"Check mode: postgresql {NAMESPACE}/{CLUSTER} would scale from 4 to 2 instances" in check_text
        assert recap(check)[prod_deployment.host]["changed"] == 1
        assert cluster_figures(prod_deployment) == after
    finally:
        back = scale(prod_deployment, before["instances"])
    assert back.returncode == 0, output(back)[-3000:]
    assert "scaled from 4 to 3 instances" in flat(back)
    assert "IMPORTANT" not in flat(back)
    restored = cluster_figures(prod_deployment)
    assert restored["instances"] == 3 and restored["sts_ready"] == 3, restored
    assert restored["roles"] == Counter(master=1, replica=2) and restored["status"] == "Running"


@DEV
def test_dev_is_refused_and_untouched(dev_deployment: Deployment):
    sts_before = dev_deployment.kubectl_json("get", "statefulset", "postgresql", "-n", NAMESPACE)
    proc = dev_deployment.run("scale", extra_vars={"instances": 2})
    text = flat(proc)
    assert proc.returncode != 0
    assert "dev-postgres is a dev deployment (StatefulSet microservices/postgresql), which runs a single instance" in text, text[-3000:]
    assert "Nothing was changed" in text and "-i inventories/prod -e instances=N" in text
    assert recap(proc)[dev_deployment.host]["changed"] == 0
    sts_after = dev_deployment.kubectl_json("get", "statefulset", "postgresql", "-n", NAMESPACE)
    assert sts_after["spec"]["replicas"] == 1 and sts_after["metadata"]["generation"] == sts_before["metadata"]["generation"]
