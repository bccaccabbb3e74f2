"""Traefik v3's BasicAuth middleware, reproduced for tests: a small reverse proxy.

What it reproduces, and from where (Traefik v3 source):
* the users: ``pkg/provider/kubernetes/crd`` ``createBasicAuthMiddleware`` - a Secret of type
  ``kubernetes.io/basic-auth`` gives one user from its ``username``/``password`` keys (Traefik
  hashes the password with SHA1); any other Secret must hold exactly one key, whose non-empty
  lines are ``user:hash`` (``basicUserParser``: exactly one colon, else an error);
* the check: ``github.com/abbot/go-http-auth`` ``CheckSecret`` as Traefik pins it (the
  containous fork of March 2020): ``{SHA}`` -> SHA1, ``$2a$``/``$2b$``/``$2x$``/``$2y$`` ->
  bcrypt, anything else -> MD5-crypt with the hash's own magic (``$apr1$`` or ``$1$``). SHA-crypt
  (``$5$``, ``$6$``, what ``openssl passwd -5/-6`` makes) is not in that version: such a hash
  falls through to MD5-crypt and never matches, as in Traefik;
* the answer: 401 with ``WWW-Authenticate: Basic realm="<realm>"`` and ``401 Unauthorized``;
  on success ``removeHeader`` drops ``Authorization`` and ``headerField`` carries the user.

Only the middleware is reproduced: no TLS, no routing rules. The upstream is a real server.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import bcrypt
import httpx

_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailers",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-encoding",
}


class SecretFormatError(ValueError):
    """Traefik would refuse to build the middleware from this Secret."""


def md5_crypt(password: bytes, salt: bytes, magic: bytes) -> bytes:
    """MD5-crypt (``$1$``) and Apache's variant (``$apr1$``): the same algorithm, two magics."""
    salt = salt[:8]
    alt = hashlib.md5(password + salt + password).digest()
    ctx = hashlib.md5(password + magic + salt)
    length = len(password)
    while length > 0:
        ctx.update(alt[: min(16, length)])
        length -= 16
    i = len(password)
    while i:
        ctx.update(b"\0" if i & 1 else password[:1])
        i >>= 1
    final = ctx.digest()
    for i in range(1000):
        step = hashlib.md5()
        step.update(password if i & 1 else final)
        if i % 3:
            step.update(salt)
        if i % 7:
            step.update(password)
        step.update(final if i & 1 else password)
        final = step.digest()
    out = []
    for a, b, c in ((0, 6, 12), (1, 7, 13), (2, 8, 14), (3, 9, 15), (4, 10, 5)):
        value = (final[a] << 16) | (final[b] << 8) | final[c]
        for _ in range(4):
            out.append(_ITOA64[value & 0x3F])
            value >>= 6
    value = final[11]
    for _ in range(2):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
    return magic + salt + b"$" + "".join(out).encode()


def check_secret(password: str, secret: str) -> bool:
    """go-http-auth's ``CheckSecret``: does ``password`` match the stored hash ``secret``?"""
    pw, stored = password.encode(), secret.encode()
    if secret.startswith("{SHA}"):
        digest = base64.b64encode(hashlib.sha1(pw).digest())
        return hmac.compare_digest(stored[5:], digest)
    if secret.startswith(("$2a$", "$2b$", "$2x$", "$2y$")):
        # golang.org/x/crypto/bcrypt accepts every minor version; the bcrypt package wants $2b$
        try:
            return bcrypt.checkpw(pw, b"$2b$" + stored[4:])
        except ValueError:
            return False
    parts = stored.split(b"$", 3)
    if len(parts) != 4:
        return False
    magic = b"$" + parts[1] + b"$"
    return hmac.compare_digest(stored, md5_crypt(pw, parts[2], magic))


def users_from_secret(secret: dict) -> dict[str, str]:
    """The user -> hash map Traefik builds from a Secret manifest (``data`` base64, or
    ``stringData``)."""
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    name = "{}/{}".format(secret["metadata"].get("namespace"), secret["metadata"]["name"])
    if secret.get("type") == "kubernetes.io/basic-auth":
        if "username" not in data or "password" not in data:
            raise SecretFormatError(f"secret {name} must contain both username and password keys")
        sha = base64.b64encode(hashlib.sha1(data["password"].encode()).digest()).decode()
        return {data["username"]: "{SHA}" + sha}
    if len(data) != 1:
        raise SecretFormatError(f"found {len(data)} elements for secret {name}, must be one")
    users: dict[str, str] = {}
    for line in next(iter(data.values())).splitlines():
        if not line:
            continue
        fields = line.split(":")
        if len(fields) != 2:
            raise SecretFormatError(f"error parsing BasicUser: {line[:3]}...")
        users[fields[0]] = fields[1]
    if not users:
        raise SecretFormatError(f"secret {name} does not contain any credentials")
    return users


@dataclass(frozen=True)
class BasicAuth:
    """The ``spec.basicAuth`` of a Middleware, with its users already loaded."""

    users: dict[str, str]
    realm: str = "traefik"
    remove_header: bool = False
    header_field: str = ""

    @classmethod
    def from_manifests(cls, middleware: dict, secret: dict) -> BasicAuth:
        spec = middleware["spec"]["basicAuth"]
        if spec.get("secret") != secret["metadata"]["name"]:
            raise SecretFormatError("the Secret is not the one the middleware names")
        if middleware["metadata"].get("namespace") != secret["metadata"].get("namespace"):
            raise SecretFormatError("Traefik reads the Secret from the middleware's namespace")
        return cls(
            users=users_from_secret(secret),
            realm=spec.get("realm") or "traefik",
            remove_header=bool(spec.get("removeHeader", False)),
            header_field=spec.get("headerField", ""),
        )

    def authenticate(self, authorization: str | None) -> str | None:
        """The user name when the header carries valid credentials, else None."""
        if not authorization or authorization[:6].lower() != "basic ":
            return None
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
        except (binascii.Error, UnicodeDecodeError):
            return None
        user, sep, password = decoded.partition(":")
        if not sep or user not in self.users:
            return None
        return user if check_secret(password, self.users[user]) else None


@dataclass
class ProxyLog:
    """What reached the upstream: the headers of each forwarded request."""

    forwarded: list[dict[str, str]]


@contextmanager
def basic_auth_proxy(auth: BasicAuth, upstream: str) -> Iterator[tuple[str, ProxyLog]]:
    """Serve ``auth`` in front of ``upstream`` on a free local port; yield (URL, log)."""
    log = ProxyLog(forwarded=[])
    client = httpx.Client(base_url=upstream, timeout=60.0)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # keep test output quiet
            pass

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            user = auth.authenticate(self.headers.get("Authorization"))
            if user is None:
                payload = b"401 Unauthorized\n"
                self.send_response(401)
                self.send_header("Content-Type", "text/plain")
                self.send_header("WWW-Authenticate", f'Basic realm="{auth.realm}"')
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP | {"host"}
            }
            if auth.remove_header:
                headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
            if auth.header_field:
                headers[auth.header_field] = user
            log.forwarded.append(dict(headers))
            answer = client.request(self.command, self.path, headers=headers, content=body)
            self.send_response(answer.status_code)
            for key, value in answer.headers.multi_items():
                if key.lower() not in _HOP_BY_HOP:
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.content)))
            self.end_headers()
            self.wfile.write(answer.content)

        do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _handle  # noqa: N815

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", log
    finally:
        server.shutdown()
        server.server_close()
        client.close()
