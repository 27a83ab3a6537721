"""A small OAuth2 authorization server on loopback, standing in for Google and
Microsoft (which tests cannot reach), and a Dovecot that checks its tokens.

The server approves every authorization request at once (the user's consent is
not what is tested), issues access and refresh tokens, refreshes and revokes
them, answers Dovecot's token introspection (RFC 7662 style), and serves the
profile endpoints allauth reads: Google's userinfo and Microsoft Graph's /me.
"""

from __future__ import annotations

import http.server
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

from .dovecot import Dovecot

DOMAIN = "example.test"


@dataclass
class Grant:
    email: str
    username: str  # the Dovecot user the address belongs to
    refresh: str
    revoked: bool = False


@dataclass
class OAuthServer:
    """Start with ``start()``; ``url`` is its base URL."""

    lifetime: int = 3600  # seconds an access token lives
    identities: dict[str, str] = field(default_factory=dict)  # email -> username
    next_email: str = ""  # the identity the next authorization signs in as
    access: dict[str, tuple[Grant, float]] = field(default_factory=dict)
    grants: dict[str, Grant] = field(default_factory=dict)  # by refresh token
    codes: dict[str, Grant] = field(default_factory=dict)
    refreshes: int = 0
    requests_seen: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def start(self) -> OAuthServer:
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, status: int, body: dict | None = None, **headers) -> None:
                data = json.dumps(body or {}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _form(self) -> dict[str, str]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                return {k: v[0] for k, v in parse_qs(raw).items()}

            def _bearer(self) -> Grant | None:
                auth = self.headers.get("Authorization", "")
                token = auth.removeprefix("Bearer ").strip()
                return server.valid(token)

            def do_GET(self) -> None:  # noqa: N802
                parts = urlsplit(self.path)
                server.requests_seen.append(parts.path)
                if parts.path.endswith("/authorize"):
                    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
                    code = server.authorize()
                    target = (
                        query["redirect_uri"]
                        + "?"
                        + urlencode({"code": code, "state": query.get("state", "")})
                    )
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.end_headers()
                elif parts.path == "/userinfo":
                    grant = self._bearer()
                    if grant is None:
                        self._reply(401, {"error": "invalid_token"})
                    else:
                        self._reply(
                            200,
                            {
                                "id": grant.username,
                                "sub": grant.username,
                                "email": grant.email,
                                "verified_email": True,
                                "name": "Test Person",
                            },
                        )
                elif parts.path == "/v1.0/me":
                    grant = self._bearer()
                    if grant is None:
                        self._reply(401, {"error": {"message": "bad token"}})
                    else:
                        self._reply(
                            200,
                            {
                                "id": grant.username,
                                "mail": grant.email,
                                "userPrincipalName": grant.email,
                                "displayName": "Test Person",
                            },
                        )
                else:
                    self._reply(404)

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                server.requests_seen.append(path)
                form = self._form()
                if path.endswith("/token"):
                    status, body = server.token(form)
                    self._reply(status, body)
                elif path == "/introspect":
                    grant = server.valid(form.get("token", ""))
                    if grant is None:
                        self._reply(200, {"active": False})
                    else:
                        self._reply(
                            200,
                            {
                                "active": True,
                                "email": grant.email,
                                "username": grant.username,
                            },
                        )
                else:
                    self._reply(404)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    # -- what the endpoints do ------------------------------------------------

    def add_identity(self, username: str) -> str:
        """An address at the provider for a Dovecot user; the next sign-in's."""
        email = f"{username}@{DOMAIN}"
        self.identities[email] = username
        self.next_email = email
        return email

    def authorize(self) -> str:
        email = self.next_email
        grant = Grant(email, self.identities[email], secrets.token_urlsafe(16))
        code = secrets.token_urlsafe(12)
        with self.lock:
            self.codes[code] = grant
        return code

    def _issue(self, grant: Grant) -> dict:
        access = "at-" + secrets.token_urlsafe(16)
        self.access[access] = (grant, time.time() + self.lifetime)
        return {
            "access_token": access,
            "token_type": "Bearer",
            "expires_in": self.lifetime,
            "scope": "mail",
        }

    def token(self, form: dict[str, str]) -> tuple[int, dict]:
        with self.lock:
            if form.get("grant_type") == "authorization_code":
                grant = self.codes.pop(form.get("code", ""), None)
                if grant is None:
                    return 400, {"error": "invalid_grant"}
                self.grants[grant.refresh] = grant
                return 200, {**self._issue(grant), "refresh_token": grant.refresh}
            if form.get("grant_type") == "refresh_token":
                self.refreshes += 1
                grant = self.grants.get(form.get("refresh_token", ""))
                if grant is None or grant.revoked:
                    return 400, {"error": "invalid_grant"}
                time.sleep(0.05)  # a real endpoint takes a while: races show
                return 200, self._issue(grant)
        return 400, {"error": "unsupported_grant_type"}

    def valid(self, access: str) -> Grant | None:
        entry = self.access.get(access)
        if entry is None:
            return None
        grant, expires = entry
        if grant.revoked or time.time() >= expires:
            return None
        return grant

    def expire_access_tokens(self) -> None:
        """Every access token stops working now (refresh tokens still do)."""
        with self.lock:
            for token, (grant, _expires) in list(self.access.items()):
                self.access[token] = (grant, 0.0)

    def revoke(self, email: str) -> None:
        """The user withdrew the app's access: every token of theirs is dead."""
        with self.lock:
            for grant in self.grants.values():
                if grant.email == email:
                    grant.revoked = True


class OAuthDovecot(Dovecot):
    """The test Dovecot, also accepting XOAUTH2/OAUTHBEARER checked against
    ``oauth``'s introspection endpoint. Users log in as ``<user>@example.test``."""

    def __init__(self, oauth: OAuthServer, **kwargs: object) -> None:
        self.oauth = oauth
        super().__init__(**kwargs)

    def _config(self) -> str:
        config = super()._config()
        ext = self.root / "oauth2.conf.ext"
        ext.write_text(
            f"introspection_url = {self.oauth.url}/introspect\n"
            "introspection_mode = post\n"
            "username_attribute = username\n"
            "active_attribute = active\n"
            "active_value = true\n"
        )
        mechanisms = "auth_mechanisms = plain login"
        first_passdb = "passdb {\n  driver = passwd-file"
        if mechanisms not in config or first_passdb not in config:
            raise RuntimeError("Dovecot's test configuration changed; update this")
        config = config.replace(
            mechanisms,
            mechanisms + " xoauth2 oauthbearer\n"
            # "user@example.test" is the Dovecot user "user".
            "auth_username_format = %Ln",
        )
        return config.replace(
            first_passdb,
            "passdb {\n  driver = oauth2\n  mechanisms = xoauth2 oauthbearer\n"
            f"  args = {ext}\n}}\n" + first_passdb,
            1,
        )
