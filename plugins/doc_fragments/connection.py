# -*- coding: utf-8 -*-
# Copyright (c) microservices.postgres contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connection and transport options shared by the collection's PostgreSQL modules."""

from __future__ import annotations


class ModuleDocFragment:
    """Mirrors CONNECTION_ARGUMENT_SPEC in plugins/module_utils/_postgres_connection.py."""

    DOCUMENTATION = r"""
options:
  transport:
    description:
      - How SQL reaches the server.
      - V(direct) connects from the managed host with psycopg 3 (anything reachable over TCP or a local socket).
      - V(kubernetes) runs C(psql) inside the database pod through the Kubernetes exec API, once for the catalog
        read and once for the write batch, with the SQL on stdin. It needs neither Python nor a network path into
        the pod (the official postgres image and Spilo both work). psql connects over the pod's local socket as
        O(login_user) to O(login_db); O(login_host), O(login_port), O(login_password), O(ssl_mode),
        O(ssl_rootcert) and O(connect_timeout) are not used.
    type: str
    choices: [direct, kubernetes]
    default: direct
  login_host:
    description:
      - Host name, IP address or socket directory of the server.
      - Empty means libpq's default (the local Unix socket).
      - Falls back to the E(PGHOST) environment variable.
    type: str
    default: ''
  login_port:
    description:
      - Port of the server.
      - Falls back to the E(PGPORT) environment variable.
    type: int
    default: 5432
  login_user:
    description:
      - Role to log in as. Each module says which privileges it needs; for M(microservices.postgres.service_databases)
        that is CREATEROLE and CREATEDB, and superuser to check passwords with its C(password_update=always)
        (stored verifiers are only readable from C(pg_authid)).
      - Falls back to the E(PGUSER) environment variable.
    type: str
    default: postgres
  login_password:
    description:
      - Password of O(login_user). Omit it for peer/trust authentication or a C(.pgpass) file.
      - Falls back to the E(PGPASSWORD) environment variable.
    type: str
  login_db:
    description:
      - Database to connect to for the catalog read and for role and database statements.
      - Falls back to the E(PGDATABASE) environment variable.
    type: str
    default: postgres
  ssl_mode:
    description:
      - libpq C(sslmode) of the connection.
      - Falls back to the E(PGSSLMODE) environment variable.
      - When neither is set, V(verify-full) for a remote O(login_host) (TLS required, the certificate checked
        against O(ssl_rootcert) and the host name), and V(prefer) for a Unix socket (empty O(login_host) or a
        directory) or a loopback address (V(localhost), C(127.0.0.0/8), V(::1)), where no network is crossed.
      - A certificate that does not verify fails the task with a message naming the host and what to set
        (O(ssl_rootcert), or a host name the certificate holds); nothing is changed.
    type: str
    choices: [disable, allow, prefer, require, verify-ca, verify-full]
  ssl_rootcert:
    description:
      - Path of the CA certificate(s) that must have signed the server's certificate, for example the C(ca.crt)
        of a published connection Secret written to a file. Used with O(ssl_mode=verify-ca) and
        O(ssl_mode=verify-full).
      - Falls back to the E(PGSSLROOTCERT) environment variable, then to libpq's default C(~/.postgresql/root.crt).
    type: path
  connect_timeout:
    description:
      - Seconds to wait for each connection to be established.
    type: int
    default: 10
  namespace:
    description:
      - Namespace of the database pod. Required with O(transport=kubernetes).
    type: str
  pod:
    description:
      - Name of the database pod, with O(transport=kubernetes). Mutually exclusive with O(pod_selector).
    type: str
  pod_selector:
    description:
      - Label selector that must match exactly one Ready pod, with O(transport=kubernetes),
        for example C(application=spilo,cluster-name=postgres-cluster,spilo-role=master) (the operator's
        connection pooler pods carry C(cluster-name) and C(spilo-role) too, so C(application=spilo) is needed).
    type: str
  container:
    description:
      - Container of the pod to run psql in; the pod's only or default container when omitted.
    type: str
  kubeconfig:
    description:
      - Path of the kubeconfig file, with O(transport=kubernetes).
      - Falls back to E(K8S_AUTH_KUBECONFIG), then to the Kubernetes client's own default (E(KUBECONFIG), else
        C(~/.kube/config)), then to the in-cluster service account.
    type: path
  context:
    description:
      - Context of the kubeconfig to use. Falls back to E(K8S_AUTH_CONTEXT), then to the current context.
    type: str
  exec_timeout:
    description:
      - Seconds one psql run inside the pod may take before the run fails.
    type: int
    default: 300
"""
