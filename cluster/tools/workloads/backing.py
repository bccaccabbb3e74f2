"""The stores the cluster's workloads use, real and local:

* PostgreSQL with TLS required: a private server (tests/support/private_postgres.py) with a
  self-signed certificate, `hostssl` only for TCP (a plain connection is rejected), its roles
  and databases made as the CloudNativePG Cluster declares them (bootstrap.initdb owner and
  database, postInitSQL, managed roles' passwords from their Secrets).
* SeaweedFS (`weed mini`) with the identities of the Secret seaweedfs-s3-config and the
  buckets the chart's values create (allInOne.s3.createBuckets).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from tests.support.private_postgres import PrivatePostgres  # noqa: E402
from tests.support.seaweed import SeaweedServer  # noqa: E402

HBA = """# written by cluster/tools/workloads/backing.py: TLS required over TCP, as in the cluster
local all all trust
hostssl all all 127.0.0.1/32 scram-sha-256
hostnossl all all 0.0.0.0/0 reject
"""


@dataclass
class TlsPostgres:
    server: PrivatePostgres

    @property
    def port(self) -> int:
        return self.server.port

    def sql(self, statements: list[str], database: str = "postgres") -> None:
        import psycopg

        conninfo = f"host={self.server.root} port={self.port} user=postgres dbname={database}"
        with psycopg.connect(conninfo, autocommit=True) as conn:
            for statement in statements:
                conn.execute(statement)

    def close(self) -> None:
        self.server.close()


def start_tls_postgres() -> TlsPostgres:
    server = PrivatePostgres()
    data = server.data
    proc = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
         "-subj", "/CN=realtor-pg-rw.data.svc.cluster.local",
         "-keyout", str(data / "server.key"), "-out", str(data / "server.crt")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if proc.returncode != 0:
        raise RuntimeError(f"openssl could not make the server certificate: {proc.stderr}")
    (data / "pg_hba.conf").write_text(HBA)
    with (data / "postgresql.conf").open("a") as conf:
        conf.write("\nssl = on\npassword_encryption = scram-sha-256\nmax_connections = 200\n")
    (data / "server.key").chmod(0o600)
    if os.geteuid() == 0:
        for name in ("server.key", "server.crt", "pg_hba.conf", "postgresql.conf"):
            shutil.chown(data / name, "postgres", "postgres")
    server.start()
    return TlsPostgres(server)


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def apply_cnpg_cluster(pg: TlsPostgres, cluster: dict, secrets: dict) -> list[str]:
    """Roles and databases as the CloudNativePG Cluster ``cluster`` makes them."""
    namespace = cluster["metadata"]["namespace"]
    spec = cluster["spec"]
    initdb = (spec.get("bootstrap") or {}).get("initdb") or {}
    statements = []
    owner, database = initdb.get("owner"), initdb.get("database")
    if owner:
        secret = secrets[(namespace, initdb["secret"]["name"])]
        statements.append(f'CREATE ROLE "{owner}" LOGIN PASSWORD {_quote(secret["password"])}')
        statements.append(f'CREATE DATABASE "{database}" OWNER "{owner}"')
    statements += list(initdb.get("postInitSQL") or [])
    for role in (spec.get("managed") or {}).get("roles") or []:
        ref = (role.get("passwordSecret") or {}).get("name")
        if ref:
            password = secrets[(namespace, ref)]["password"]
            statements.append(f'ALTER ROLE "{role["name"]}" LOGIN PASSWORD {_quote(password)}')
    pg.sql(statements)
    return statements


def start_seaweed(workdir: Path, s3_config: str, buckets: list[str]) -> SeaweedServer:
    """`weed mini` with the identities of ``s3_config`` (JSON) and ``buckets`` created by its
    admin identity."""
    config = json.loads(s3_config)
    admin = next(i for i in config["identities"] if "Admin" in i.get("actions", []))
    key = admin["credentials"][0]
    (workdir / "s3.json").parent.mkdir(parents=True, exist_ok=True)
    (workdir / "s3.json").write_text(s3_config)
    server = SeaweedServer(workdir / "weed", bucket=buckets[0])
    server.endpoint = type(server.endpoint)(
        server.endpoint.endpoint_url, key["accessKey"], key["secretKey"], buckets[0]
    )
    server.extra_args = [f"-s3.config={workdir / 's3.json'}"]
    server.start()
    for bucket in buckets[1:]:
        server.endpoint.create_bucket(bucket)
    return server
