"""The reproduced BasicAuth middleware checks hashes the way Traefik does, and the Secrets that
create-secrets.sh makes have the shape Traefik reads (checked with the real script and openssl)."""

from __future__ import annotations

import base64
import subprocess
from pathlib import Path

import bcrypt
import pytest

from tests.support.fake_kubectl import read_object, secret_values
from tests.support.traefik_basic_auth import (
    BasicAuth,
    SecretFormatError,
    check_secret,
    users_from_secret,
)

PASSWORD = "correct horse battery 42"


def openssl_passwd(*args: str, password: str = PASSWORD) -> str:
    done = subprocess.run(
        ["openssl", "passwd", *args, "-stdin"],
        input=password + "\n",
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.strip()


@pytest.mark.parametrize("flag", ["-apr1", "-1"])
def test_md5_crypt_hashes_from_openssl_are_accepted(flag):
    stored = openssl_passwd(flag)
    assert stored.startswith("$apr1$" if flag == "-apr1" else "$1$")
    assert check_secret(PASSWORD, stored)
    assert not check_secret(PASSWORD + "x", stored)
    assert not check_secret("", stored)


def test_the_traefik_documentation_example():
    # user "test", password "test", as in Traefik's BasicAuth documentation
    assert check_secret("test", "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/")
    assert not check_secret("test2", "$apr1$H6uskkkW$IgXLP6ewTrSuBkTrqE8wj/")


def test_sha1_and_bcrypt_are_accepted():
    import hashlib

    sha = "{SHA}" + base64.b64encode(hashlib.sha1(PASSWORD.encode()).digest()).decode()
    assert check_secret(PASSWORD, sha)
    assert not check_secret("nope", sha)
    hashed = bcrypt.hashpw(PASSWORD.encode(), bcrypt.gensalt(rounds=4)).decode()
    for prefix in ("$2a$", "$2b$", "$2y$"):  # htpasswd -B writes $2y$
        assert check_secret(PASSWORD, prefix + hashed[4:])
    assert not check_secret("nope", hashed)


@pytest.mark.parametrize("flag", ["-5", "-6"])
def test_sha_crypt_is_not_what_traefik_accepts(flag):
    """openssl passwd -5/-6 hashes look fine but Traefik's go-http-auth has no SHA-crypt:
    such a Secret would lock everyone out. create-secrets.sh uses -apr1."""
    assert not check_secret(PASSWORD, openssl_passwd(flag))


def test_secret_shapes_traefik_refuses():
    meta = {"name": "x", "namespace": "mlflow"}
    two_keys = {"metadata": meta, "data": {"users": "YTpi", "other": "YTpi"}}
    with pytest.raises(SecretFormatError, match="must be one"):
        users_from_secret(two_keys)
    bad_line = {"metadata": meta, "stringData": {"users": "admin:$apr1$a:b$c"}}
    with pytest.raises(SecretFormatError, match="BasicUser"):
        users_from_secret(bad_line)
    basic = {
        "metadata": meta,
        "type": "kubernetes.io/basic-auth",
        "stringData": {"username": "u", "password": "p"},
    }
    assert check_secret("p", users_from_secret(basic)["u"])


def test_create_secrets_makes_what_the_mlflow_middleware_reads(generated_secrets: Path):
    secret = read_object(generated_secrets, "Secret", "mlflow", "mlflow-basic-auth")
    assert secret["type"] == "Opaque"
    assert list(secret["data"]) == ["users"]  # Traefik wants exactly one key
    users = users_from_secret(secret)
    assert list(users) == ["admin"]
    assert users["admin"].startswith("$apr1$")
    login = read_object(generated_secrets, "Secret", "mlflow", "mlflow-login")
    assert login["type"] == "kubernetes.io/basic-auth"
    values = secret_values(generated_secrets, "mlflow", "mlflow-login")
    assert values["username"] == "admin"
    assert len(values["password"]) == 48  # openssl rand -hex 24: 192 random bits
    assert check_secret(values["password"], users["admin"])
    # the data API's login is another password, and serving's token a third
    api = secret_values(generated_secrets, "apps", "data-api-login")["password"]
    token = secret_values(generated_secrets, "apps", "serving-admin")["token"]
    assert len({values["password"], api, token}) == 3
    assert not check_secret(api, users["admin"])
    middleware = {
        "metadata": {"name": "mlflow-auth", "namespace": "mlflow"},
        "spec": {"basicAuth": {"secret": "mlflow-basic-auth", "realm": "mlflow"}},
    }
    auth = BasicAuth.from_manifests(middleware, secret)
    header = "Basic " + base64.b64encode(f"admin:{values['password']}".encode()).decode()
    assert auth.authenticate(header) == "admin"


def test_create_secrets_prints_no_generated_value(generated_secrets: Path):
    output = (generated_secrets.parent / "output.txt").read_text()
    for ns, name in (("mlflow", "mlflow-login"), ("apps", "data-api-login")):
        assert secret_values(generated_secrets, ns, name)["password"] not in output
    assert secret_values(generated_secrets, "apps", "serving-admin")["token"] not in output
    assert "applied: secret mlflow/mlflow-basic-auth" in output
