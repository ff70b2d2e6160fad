"""playbooks/rotate_password.yml against the shared dev and prod deployments (kubesim).

Each test rotates a service of its own (dev: userdb; prod: settlementdb), so the other day-2 tests
keep working: the rotated password is published in the service's Secret like any other, and a
deploy.yml afterwards keeps it.
"""

from __future__ import annotations

import base64
import urllib.parse

from .helpers import DEV, NAMESPACE, PROD, Deployment, flat, output, recap

OWNERS = ["userservice", "paymentservice", "settlementservice", "partnerservice", "accountingservice"]


def secret_data(deployment: Deployment, name: str) -> dict[str, str]:
    """A Secret's data, decoded."""
    data = deployment.kubectl_json("-n", NAMESPACE, "get", "secret", name)["data"]
    return {key: base64.b64decode(value).decode() for key, value in data.items()}


def resource_versions(deployment: Deployment) -> dict[str, str]:
    """Every Secret of the namespace -> its resourceVersion."""
    items = deployment.kubectl_json("-n", NAMESPACE, "get", "secrets")["items"]
    return {item["metadata"]["name"]: item["metadata"]["resourceVersion"] for item in items}


def verifiers(deployment: Deployment, pod: str, container: str) -> dict[str, str]:
    """Stored SCRAM verifiers of the service owners (psql as postgres over the pod's socket)."""
    names = ", ".join(f"'{owner}'" for owner in OWNERS)
    proc = deployment.kubectl("-n", NAMESPACE, "exec", pod, "-c", container, "--", "psql", "-U", "postgres", "-X",
                              "-At", "-F", " ", "-c", f"SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ({names})")
    return dict(line.split(" ", 1) for line in proc.stdout.splitlines())


def logs_in(deployment: Deployment, pod: str, container: str, user: str, database: str, password: str) -> bool:
    """Whether `user` logs in to `database` with `password` over TCP (scram-sha-256 in pg_hba)."""
    proc = deployment.kubectl("-n", NAMESPACE, "exec", pod, "-c", container, "--", "env", f"PGPASSWORD={password}",
                              "psql", "-X", "-h", "127.0.0.1", "-U", user, "-d", database, "-Atc", "SELECT current_user",
                              check=False)
    return proc.returncode == 0 and proc.stdout.strip() == user


def operator_pods(deployment: Deployment) -> list[str]:
    pods = deployment.kubectl_json("-n", "postgres-operator", "get", "pods", "-l", "name=postgres-operator")["items"]
    return sorted(pod["metadata"]["name"] for pod in pods)


@DEV
def test_dev_rotates_one_password_and_nothing_else(dev_deployment: Deployment) -> None:
    pod, container = "postgresql-0", "postgresql"
    old = secret_data(dev_deployment, "postgresql-credentials")["userservice-password"]
    versions, stored = resource_versions(dev_deployment), verifiers(dev_deployment, pod, container)
    assert logs_in(dev_deployment, pod, container, "userservice", "userdb", old)

    proc = dev_deployment.run("rotate_password", extra_vars={"service": "userdb"})
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    # The credentials Secret's key, the role's verifier and the service's Secret.
    assert recap(proc)[dev_deployment.host]["changed"] == 3, text[-3000:]
    new = secret_data(dev_deployment, "postgresql-credentials")["userservice-password"]
    assert new != old and len(new) == 32 and new.isalnum()
    published = secret_data(dev_deployment, "userdb-credentials")
    assert published["password"] == new
    assert published["url"] == f"postgresql://userservice:{new}@postgresql.microservices.svc.cluster.local:5432/userdb"
    assert old not in text and new not in text
    assert "role userservice password changed" in text

    assert logs_in(dev_deployment, pod, container, "userservice", "userdb", new)
    assert not logs_in(dev_deployment, pod, container, "userservice", "userdb", old)
    after = verifiers(dev_deployment, pod, container)
    assert after["userservice"] != stored["userservice"]
    assert {k: v for k, v in after.items() if k != "userservice"} == {k: v for k, v in stored.items() if k != "userservice"}
    changed = {name for name, version in resource_versions(dev_deployment).items() if versions.get(name) != version}
    assert changed == {"postgresql-credentials", "userdb-credentials"}

    # The Secret is the source of truth: deploy.yml keeps the new password and changes nothing.
    deploy = dev_deployment.run("deploy")
    assert deploy.returncode == 0, output(deploy)[-6000:]
    assert recap(deploy)[dev_deployment.host]["changed"] == 0, output(deploy)[-4000:]
    assert "userdb (owner userservice): unchanged" in output(deploy)
    assert new not in output(deploy)
    assert logs_in(dev_deployment, pod, container, "userservice", "userdb", new)


@DEV
def test_dev_check_mode_and_refusals_change_nothing(dev_deployment: Deployment) -> None:
    pod, container = "postgresql-0", "postgresql"
    versions, stored = resource_versions(dev_deployment), verifiers(dev_deployment, pod, container)
    given = "Check-Mode-Only-Password-0001"

    check = dev_deployment.run("rotate_password", "--check", extra_vars={"service": "paymentdb", "new_password": given})
    text = output(check)
    assert check.returncode == 0, text[-6000:]
    assert recap(check)[dev_deployment.host]["changed"] == 3
    assert "Check mode, nothing changed: a real run would rotate the password of role paymentservice" in text
    assert "role paymentservice password changed" in text
    assert given not in text

    unknown = dev_deployment.run("rotate_password", extra_vars={"service": "orderdb"})
    assert unknown.returncode != 0
    assert ('service "orderdb" is not a service database of dev-postgres (dev); allowed: userdb, paymentdb, '
            "settlementdb, partnerdb, accountingdb.") in flat(unknown)

    short = dev_deployment.run("rotate_password", extra_vars={"service": "paymentdb", "new_password": "tooShort123"})
    assert short.returncode != 0
    assert "new_password is shorter than 16 characters" in flat(short)
    assert "tooShort123" not in output(short)

    pinned_password = "Pinned-In-The-Inventory-42"
    services = [{"database": db, "owner": owner} for db, owner in
                zip(["userdb", "paymentdb", "settlementdb", "partnerdb", "accountingdb"], OWNERS)]
    services[1]["password"] = pinned_password
    pinned = dev_deployment.run("rotate_password", extra_vars={"service": "paymentdb", "postgres_dev_services": services})
    assert pinned.returncode != 0
    assert ("paymentservice's password is set in the inventory (postgres_dev_services[].password); change it there "
            "and run deploy.yml.") in flat(pinned)
    assert pinned_password not in output(pinned)

    assert resource_versions(dev_deployment) == versions
    assert verifiers(dev_deployment, pod, container) == stored


@PROD
def test_prod_rotates_through_the_operator(prod_deployment: Deployment) -> None:
    master, container = "postgres-cluster-0", "postgres"
    operator_secret = "settlementservice.postgres-cluster.credentials.postgresql.acid.zalan.do"
    old = secret_data(prod_deployment, operator_secret)["password"]
    versions, stored = resource_versions(prod_deployment), verifiers(prod_deployment, master, container)
    operators = operator_pods(prod_deployment)
    new = "Rotated/Pass:word@2026-settlement"

    proc = prod_deployment.run("rotate_password", extra_vars={"service": "settlementdb", "new_password": new})
    text = output(proc)
    assert proc.returncode == 0, text[-6000:]
    assert old not in text and new not in text and urllib.parse.quote(new, safe="") not in text
    assert "PostgreSQL accepts the new password; Secret settlementdb-credentials re-published" in flat(proc)
    operator_data = secret_data(prod_deployment, operator_secret)
    assert operator_data == {"username": "settlementservice", "password": new}
    published = secret_data(prod_deployment, "settlementdb-credentials")
    assert published["password"] == new
    encoded = urllib.parse.quote(new, safe="")
    assert published["pooler_url"] == (f"postgresql://settlementservice:{encoded}@postgres-cluster-pooler.microservices"
                                       ".svc.cluster.local:5432/settlementdb")
    # The operator was restarted so that its start-up sync applies the Secret now.
    restarted = operator_pods(prod_deployment)
    assert len(restarted) == 1 and not set(restarted) & set(operators)

    assert logs_in(prod_deployment, master, container, "settlementservice", "settlementdb", new)
    assert not logs_in(prod_deployment, master, container, "settlementservice", "settlementdb", old)
    after = verifiers(prod_deployment, master, container)
    assert after["settlementservice"] != stored["settlementservice"]
    assert ({k: v for k, v in after.items() if k != "settlementservice"}
            == {k: v for k, v in stored.items() if k != "settlementservice"})
    changed = {name for name, version in resource_versions(prod_deployment).items() if versions.get(name) != version}
    assert changed == {operator_secret, "settlementdb-credentials"}

    # Again with the same password: PostgreSQL has it already, so no restart and no change.
    again = prod_deployment.run("rotate_password", extra_vars={"service": "settlementdb", "new_password": new})
    assert again.returncode == 0, output(again)[-6000:]
    assert recap(again)[prod_deployment.host]["changed"] == 0, output(again)[-4000:]
    assert operator_pods(prod_deployment) == restarted
    assert logs_in(prod_deployment, master, container, "settlementservice", "settlementdb", new)


@PROD
def test_prod_check_mode_and_unknown_service_change_nothing(prod_deployment: Deployment) -> None:
    master, container = "postgres-cluster-0", "postgres"
    versions, stored = resource_versions(prod_deployment), verifiers(prod_deployment, master, container)
    operators = operator_pods(prod_deployment)

    check = prod_deployment.run("rotate_password", "--check", extra_vars={"service": "accountingdb"})
    text = flat(check)
    assert check.returncode == 0, output(check)[-6000:]
    assert recap(check)[prod_deployment.host]["changed"] == 2
    assert ("Check mode: a real run would restart the operator (pods " + ", ".join(operators) + ")") in text
    assert "Check mode, nothing changed: a real run would rotate the password of role accountingservice" in text

    unknown = prod_deployment.run("rotate_password", extra_vars={"service": "orderdb"})
    assert unknown.returncode != 0
    assert 'service "orderdb" is not a service database of prod-postgres (prod); allowed: userdb,' in flat(unknown)

    assert resource_versions(prod_deployment) == versions
    assert verifiers(prod_deployment, master, container) == stored
    assert operator_pods(prod_deployment) == operators
