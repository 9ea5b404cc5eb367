"""The bundled jwt plugin through the real binary: every algorithm, every
claim failure, attack tokens, header injection, cache behaviour, JWKS (file
and jwks_uri) and the cookie / query token sources.

Tokens are made by python3-jwt and python3-cryptography, and by libjwt
(tests/tools/jwt_sign.c), never by tollgate's own code: a bug shared by signer
and verifier could not hide here."""

import base64
import json
import os
import re
import subprocess
import time

import jwt
import pytest
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

import tg_harness as h

ISS = "https://auth.example.com"
AUD = "users-api"
HS = {"HS256": b"it-hs256-secret-0123456789abcdef-xyz",
      "HS384": b"it-hs384-secret-0123456789abcdef-0123456789abcdef",
      "HS512": b"it-hs512-secret-0123456789abcdef-0123456789abcdef-0123456789abcdef"}
CHALLENGE = 'Bearer error="invalid_token", error_description="%s"'
TEXTS = {"malformed": "malformed token", "unsupported_alg": "unsupported algorithm", "unknown_key": "unknown key",
         "bad_signature": "invalid signature", "expired": "token expired", "not_yet_valid": "token not yet valid",
         "issued_in_future": "token issued in the future", "wrong_issuer": "wrong issuer",
         "wrong_audience": "wrong audience", "missing_claim": "missing required claim"}


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64int(i, n=None):
    return b64(i.to_bytes(n or (i.bit_length() + 7) // 8, "big"))


def pub_pem(key):
    return key.public_key().public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    d = tmp_path_factory.mktemp("jwtkeys")
    k = {"dir": str(d),
         "rsa": rsa.generate_private_key(public_exponent=65537, key_size=2048),
         "rsa2": rsa.generate_private_key(public_exponent=65537, key_size=2048),
         "ES256": ec.generate_private_key(ec.SECP256R1()),
         "ES384": ec.generate_private_key(ec.SECP384R1()),
         "ES512": ec.generate_private_key(ec.SECP521R1())}
    for name in ("rsa", "rsa2", "ES256", "ES384", "ES512"):
        with open(os.path.join(str(d), name + ".pub.pem"), "wb") as f:
            f.write(pub_pem(k[name]))
    k["rsa_pem"] = pub_pem(k["rsa"])
    n2 = k["rsa2"].public_key().public_numbers()
    e = k["ES256"].public_key().public_numbers()
    jwks = {"keys": [
        {"kty": "RSA", "kid": "jwks-rs", "use": "sig", "alg": "RS256", "n": b64int(n2.n), "e": b64int(n2.e)},
        {"kty": "EC", "kid": "jwks-es", "crv": "P-256", "x": b64int(e.x, 32), "y": b64int(e.y, 32)},
        {"kty": "RSA", "kid": "jwks-enc", "use": "enc", "alg": "RSA-OAEP", "n": b64int(n2.n), "e": b64int(n2.e)},
    ]}
    k["jwks"] = json.dumps(jwks).encode()
    with open(os.path.join(str(d), "jwks.json"), "wb") as f:
        f.write(k["jwks"])
    return k


def path(keys, name):
    return os.path.join(keys["dir"], name)


def all_keys(keys):
    """One key per algorithm, each with a kid named after it."""
    out = [{"kid": a, "algorithm": a, "secret": HS[a].decode()} for a in HS]
    out += [{"kid": a, "algorithm": a, "public_key": path(keys, "rsa.pub.pem")} for a in ("RS256", "RS384", "RS512")]
    out += [{"kid": a, "algorithm": a, "public_key": path(keys, a + ".pub.pem")} for a in ("ES256", "ES384", "ES512")]
    return out


def signing_key(keys, alg):
    if alg.startswith("HS"):
        return HS[alg]
    return keys["rsa"] if alg.startswith("RS") else keys[alg]


def claims(**kw):
    now = int(time.time())
    c = {"sub": "alice", "iss": ISS, "aud": AUD, "exp": now + 600, "iat": now, "scope": "users:read other"}
    for k, v in kw.items():
        if v is None:
            c.pop(k, None)
        else:
            c[k] = v
    return c


def token(keys, alg="RS256", kid="RS256", headers=None, **kw):
    hd = dict(headers or {})
    if kid is not None:
        hd["kid"] = kid
    return jwt.encode(claims(**kw), signing_key(keys, alg), alg, headers=hd)


def raw_token(header, payload, alg, key):
    """A compact JWS signed by hand (for headers python-jwt will not write)."""
    si = (b64(json.dumps(header).encode()) + "." + b64(json.dumps(payload).encode())).encode()
    m = hmac.HMAC(key, hashes.SHA256())
    m.update(si)
    return si.decode() + "." + b64(m.finalize())


def jwt_conf(key_material, **kw):
    conf = {"keys": all_keys(key_material), "issuer": ISS, "audience": AUD, "required_claims": ["sub", "exp"],
            "forward_claims": {"sub": "X-User-Id", "email": "X-User-Email", "level": "X-Level",
                               "admin": "X-Admin"},
            "strip_token": True}
    conf.update(kw)
    return conf


def start(gateway_factory, upstream_factory, conf, workers=2, admin=False, extra_upstreams=None, limits=None):
    up = upstream_factory("up")
    port = h.free_port()
    ups = {"up": h.upstream_conf([up.address])}
    ups.update(extra_upstreams or {})
    cfg = h.gateway_config(port, ups, [h.route("all", "up", {"path_prefix": "/"})], workers=workers,
                           limits=limits)
    cfg["plugins"] = [{"name": "jwt", "config": conf}]
    admin_port = None
    if admin:
        admin_port = h.free_port()
        cfg["admin"] = {"address": "127.0.0.1:%d" % admin_port}
    gw = gateway_factory(cfg)
    if admin_port is not None:
        wait_admin(admin_port)
    return gw, up, port, admin_port


def wait_admin(admin_port, timeout=5.0):
    """The client listeners may accept before the admin endpoint does."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if h.request(admin_port, "GET", "/readyz", host="127.0.0.1").status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "admin endpoint never ready"
        time.sleep(0.02)


def get(port, tok=None, headers=(), target="/users/1"):
    hs = list(headers)
    if tok is not None:
        hs.append(("Authorization", "Bearer " + tok))
    return h.request(port, "GET", target, headers=hs)


def upstream_headers(resp):
    return json.loads(resp.body)["headers"]


def hv(resp, name):
    """Values of a request header as the upstream received it."""
    return [v for n, v in upstream_headers(resp) if n.lower() == name.lower()]


def assert_invalid_request(r):
    """RFC 6750 3.1: a repeated token is invalid_request, answered 401."""
    assert r.status == 401, r
    assert r.header_all("WWW-Authenticate") == [
        'Bearer error="invalid_request", error_description="more than one token"'], r
    assert r.json()["error"] == "more than one token"


def assert_401(r, reason):
    assert r.status == 401, r
    assert r.header_all("WWW-Authenticate") == [CHALLENGE % TEXTS[reason]], r
    body = r.json()
    assert body["error"] == TEXTS[reason]
    assert r.header("Content-Type") == "application/json"


def metrics(admin_port):
    r = h.request(admin_port, "GET", "/metrics", host="127.0.0.1")
    assert r.status == 200, r
    out = {}
    for m in re.finditer(r'^(tollgate_jwt_\w+)\{(\w+)="([^"]*)"\} (\d+)', r.body.decode(), re.M):
        out[(m.group(1), m.group(3))] = int(m.group(4))
    return out


# ------------------------------------------------------------- accepted ----

def test_every_algorithm(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys))
    for alg in list(HS) + ["RS256", "RS384", "RS512", "ES256", "ES384", "ES512"]:
        r = get(port, token(keys, alg, kid=alg, sub="user-" + alg))
        assert r.status == 200, (alg, r)
        assert hv(r, "X-User-Id") == ["user-" + alg]
        assert hv(r, "Authorization") == [], "strip_token left the token upstream"
        # Without kid every key of the algorithm is tried.
        r = get(port, token(keys, alg, kid=None))
        assert r.status == 200, (alg, "no kid", r)
    assert up.requests == 18


def test_forward_claims_and_injection(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys))
    tok = token(keys, sub="alice", level=42, admin=False)
    spoof = [("X-User-Id", "admin"), ("x-user-id", "root"), ("X-User-Email", "evil@example.com"),
             ("X-Admin", "true")]
    r = get(port, tok, headers=spoof)
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["alice"]
    assert hv(r, "X-User-Email") == [], "client-sent header of an absent claim reached the upstream"
    assert hv(r, "X-Level") == ["42"]
    assert hv(r, "X-Admin") == ["false"]
    # A claim with CR LF is not turned into a header (nor a second one).
    r = get(port, token(keys, sub="a\r\nX-Injected: 1"), headers=spoof)
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == []
    assert hv(r, "X-Injected") == []
    # The spoofed header never passes on a rejected request either.
    n = up.requests
    r = get(port, "garbage", headers=spoof)
    assert_401(r, "malformed")
    assert up.requests == n


def test_client_connection_cannot_remove_forwarded_claims(keys, gateway_factory, upstream_factory):
    """RFC 9110 7.6.1 applies to received fields: the X-User-Id the plugin sets is not the
    client's to declare hop-by-hop."""
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys))
    tok = token(keys, sub="alice", level=42)
    for conn in ("X-User-Id", "x-user-id, X-Level", "keep-alive, X-USER-ID,X-Admin"):
        r = get(port, tok, headers=[("Connection", conn), ("X-User-Id", "admin")])
        assert r.status == 200, (conn, r)
        assert hv(r, "X-User-Id") == ["alice"], conn
        assert hv(r, "X-Level") == ["42"], conn
        rid = hv(r, "X-Request-Id")
        assert len(rid) == 1 and rid[0], conn


@pytest.mark.parametrize("policy", [None, "allow"])
def test_underscore_spellings_never_shadow_forwarded_claims(keys, gateway_factory, upstream_factory, policy):
    """CGI/WSGI/Rails upstreams read X_User_Id as X-User-Id; with the default (drop) and even
    with allow, no spelling of a forwarded claim's header gets past the gateway, whether the
    token has the claim (X-User-Id) or not (X-User-Email)."""
    limits = {"headers_with_underscores": policy} if policy else None
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys), limits=limits)
    spoof = [("X_User_Id", "admin"), ("X-User_Id", "admin"), ("x_user-id", "root"),
             ("X_User_Email", "evil@example.com"), ("X_Other", "ok")]
    r = get(port, token(keys, sub="alice"), headers=spoof)
    assert r.status == 200, r
    names = [n.lower().replace("_", "-") for n, v in upstream_headers(r)]
    assert names.count("x-user-id") == 1, upstream_headers(r)
    assert hv(r, "X-User-Id") == ["alice"]
    assert "x-user-email" not in names, upstream_headers(r)
    assert hv(r, "X_Other") == (["ok"] if policy == "allow" else [])


def test_strip_token_off_keeps_authorization(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys, strip_token=False))
    tok = token(keys)
    r = get(port, tok)
    assert r.status == 200, r
    assert hv(r, "Authorization") == ["Bearer " + tok]


# ------------------------------------------------------------- rejected ----

def test_missing_token(keys, gateway_factory, upstream_factory):
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys), admin=True)
    for headers in ([], [("Authorization", "Basic YWxhZGRpbjpvcGVuc2VzYW1l")]):
        r = get(port, headers=headers)
        assert r.status == 401, r
        # RFC 6750 3.1: no error code when the request had no credentials.
        assert r.header_all("WWW-Authenticate") == ['Bearer realm="tollgate"']
        assert r.json()["error"] == "missing token"
    assert up.requests == 0
    assert metrics(admin)[("tollgate_jwt_rejections_total", "missing")] == 2


def test_claim_failures(keys, gateway_factory, upstream_factory):
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys, leeway="30s"), admin=True)
    now = int(time.time())
    cases = [
        ("expired", dict(exp=now - 31)),
        ("not_yet_valid", dict(nbf=now + 60)),
        ("issued_in_future", dict(iat=now + 60)),
        ("wrong_issuer", dict(iss="https://evil.example.com")),
        ("wrong_issuer", dict(iss=None)),
        ("wrong_audience", dict(aud="other-api")),
        ("wrong_audience", dict(aud=["a", "b"])),
        ("missing_claim", dict(sub=None)),
        ("missing_claim", dict(exp=None)),
        ("malformed", dict(exp="tomorrow")),
    ]
    for reason, kw in cases:
        assert_401(get(port, token(keys, **kw)), reason)
    # Within leeway, and aud as an array holding ours.
    assert get(port, token(keys, exp=now - 5)).status == 200
    assert get(port, token(keys, nbf=now + 5, aud=["x", AUD])).status == 200
    assert up.requests == 2
    m = metrics(admin)
    assert m[("tollgate_jwt_rejections_total", "wrong_issuer")] == 2
    assert m[("tollgate_jwt_rejections_total", "expired")] == 1
    assert m[("tollgate_jwt_verifications_total", "ok")] == 2


def test_scopes(keys, gateway_factory, upstream_factory):
    conf = jwt_conf(keys, scopes=["users:read", "users:write"])
    gw, up, port, admin = start(gateway_factory, upstream_factory, conf, admin=True)
    r = get(port, token(keys, scope="users:read"))
    assert r.status == 403, r
    assert r.header_all("WWW-Authenticate") == ['Bearer error="insufficient_scope", scope="users:read users:write"']
    assert r.json()["error"] == "insufficient scope"
    assert get(port, token(keys, scope=None)).status == 403
    assert get(port, token(keys, scope="users:write users:read")).status == 200
    assert get(port, token(keys, scope=None, scp=["users:read", "users:write"])).status == 200
    assert up.requests == 2
    assert metrics(admin)[("tollgate_jwt_rejections_total", "insufficient_scope")] == 2


def test_attack_tokens(keys, gateway_factory, upstream_factory):
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys), admin=True)
    good = token(keys)
    hd, pl, sig = good.split(".")
    forged = json.loads(base64.urlsafe_b64decode(pl + "=="))
    forged["sub"] = "admin"
    cases = [
        ("unsupported_alg", jwt.encode(claims(), None, "none")),
        ("unsupported_alg", raw_token({"alg": "none", "typ": "JWT", "kid": "RS256"}, claims(), "HS256", b"x")),
        # The RSA public key PEM as HMAC secret: with the RS key's kid, and without kid.
        ("unsupported_alg", raw_token({"alg": "HS256", "typ": "JWT", "kid": "RS256"}, claims(), "HS256",
                                      keys["rsa_pem"])),
        ("bad_signature", raw_token({"alg": "HS256", "typ": "JWT"}, claims(), "HS256", keys["rsa_pem"])),
        # alg / kid mismatch both ways.
        ("unsupported_alg", token(keys, "RS512", kid="RS256")),
        ("unsupported_alg", token(keys, "RS256", kid="HS256")),
        ("unknown_key", token(keys, kid="no-such-kid")),
        ("bad_signature", hd + "." + b64(json.dumps(forged).encode()) + "." + sig),
        ("bad_signature", jwt.encode(claims(), keys["rsa2"], "RS256", headers={"kid": "RS256"})),
        ("malformed", hd + "." + pl),
        ("malformed", good + ".x"),
        # Another kind of JWT (RFC 8725 3.11); a token without typ is fine (test_typ_optional).
        ("malformed", raw_token({"alg": "HS256", "typ": "secevent+jwt", "kid": "HS256"}, claims(), "HS256",
                                HS["HS256"])),
        ("malformed", raw_token({"alg": "HS256", "typ": "JWT", "kid": "HS256", "crit": ["x"]}, claims(),
                                "HS256", HS["HS256"])),
        ("malformed", token(keys, pad="x" * 9000)),
        ("malformed", "a.b.c"),
    ]
    for reason, tok in cases:
        assert_401(get(port, tok), reason)
    assert up.requests == 0
    m = metrics(admin)
    assert m[("tollgate_jwt_rejections_total", "unsupported_alg")] == 5
    assert m[("tollgate_jwt_rejections_total", "bad_signature")] == 3
    assert m[("tollgate_jwt_rejections_total", "unknown_key")] == 1
    assert m[("tollgate_jwt_rejections_total", "malformed")] == 6


def test_duplicate_authorization_refused(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys, strip_token=False))
    r = get(port, token(keys), headers=[("Authorization", "Bearer " + token(keys, sub="mallory"))])
    assert_invalid_request(r)
    assert up.requests == 0


def test_typ_optional(keys, gateway_factory, upstream_factory):
    """RFC 7519 5.1: typ is optional (AWS Cognito sends none); present, it must
    say JWT or at+jwt (RFC 9068), in any case, with or without application/."""
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys))
    c = claims(sub="no-typ")
    r = get(port, raw_token({"alg": "HS256", "kid": "HS256"}, c, "HS256", HS["HS256"]))
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["no-typ"]
    for typ in ("jwt", "application/JWT", "at+jwt", "application/at+JWT"):
        r = get(port, raw_token({"alg": "HS256", "typ": typ, "kid": "HS256"}, c, "HS256", HS["HS256"]))
        assert r.status == 200, (typ, r)
    for typ in ("JWS", "secevent+jwt", "dpop+jwt", "", "application/", 1, None):  # null is not absent
        assert_401(get(port, raw_token({"alg": "HS256", "typ": typ, "kid": "HS256"}, c, "HS256", HS["HS256"])),
                   "malformed")
    assert up.requests == 5


# ---------------------------------------------------------------- cache ----

def test_cache_hits_counted(keys, gateway_factory, upstream_factory):
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys), workers=1, admin=True)
    tok = token(keys, "ES256", kid="ES256")
    for _ in range(3):
        r = get(port, tok)
        assert r.status == 200, r
        assert hv(r, "X-User-Id") == ["alice"]
    m = metrics(admin)
    assert m[("tollgate_jwt_verifications_total", "ok")] == 1
    assert m[("tollgate_jwt_verifications_total", "cached")] == 2


def test_cached_claims_still_checked(keys, gateway_factory, upstream_factory):
    conf = jwt_conf(keys, scopes=["users:read"])
    gw, up, port, admin = start(gateway_factory, upstream_factory, conf, workers=1, admin=True)
    tok = token(keys, scope="nothing")
    assert get(port, tok).status == 403
    assert get(port, tok).status == 403  # verified once, cached, and still refused
    m = metrics(admin)
    assert m[("tollgate_jwt_rejections_total", "insufficient_scope")] == 2


def test_cached_token_expires(keys, gateway_factory, upstream_factory):
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys), workers=1, admin=True)
    tok = token(keys, exp=int(time.time()) + 2)
    assert get(port, tok).status == 200
    assert get(port, tok).status == 200
    assert metrics(admin)[("tollgate_jwt_verifications_total", "cached")] == 1
    time.sleep(3)
    assert_401(get(port, tok), "expired")
    assert up.requests == 2


def test_cache_off(keys, gateway_factory, upstream_factory):
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys, cache=0), workers=1, admin=True)
    tok = token(keys)
    for _ in range(3):
        assert get(port, tok).status == 200
    m = metrics(admin)
    assert m[("tollgate_jwt_verifications_total", "ok")] == 3
    assert m[("tollgate_jwt_verifications_total", "cached")] == 0


# ----------------------------------------------------------------- JWKS ----

def test_jwks_file_several_kids(keys, gateway_factory, upstream_factory):
    conf = jwt_conf(keys, keys=[{"kid": "hs", "algorithm": "HS256", "secret": HS["HS256"].decode()}],
                    jwks=path(keys, "jwks.json"))
    gw, up, port, _ = start(gateway_factory, upstream_factory, conf)
    ok_rs = jwt.encode(claims(sub="rs"), keys["rsa2"], "RS256", headers={"kid": "jwks-rs"})
    ok_es = jwt.encode(claims(sub="es"), keys["ES256"], "ES256", headers={"kid": "jwks-es"})
    assert hv(get(port, ok_rs), "X-User-Id") == ["rs"]
    assert hv(get(port, ok_es), "X-User-Id") == ["es"]
    assert get(port, token(keys, "HS256", kid="hs")).status == 200
    # EC key's alg comes from its curve: an ES384 token naming it is refused.
    wrong = jwt.encode(claims(), keys["ES384"], "ES384", headers={"kid": "jwks-es"})
    assert_401(get(port, wrong), "unsupported_alg")
    # The "use": "enc" key is not a verification key.
    enc = jwt.encode(claims(), keys["rsa2"], "RS256", headers={"kid": "jwks-enc"})
    assert_401(get(port, enc), "unknown_key")
    swapped = jwt.encode(claims(), keys["rsa"], "RS256", headers={"kid": "jwks-rs"})
    assert_401(get(port, swapped), "bad_signature")


def test_jwks_uri_fetched(keys, gateway_factory, upstream_factory):
    idp = upstream_factory("idp")
    body = keys["jwks"]
    idp.raw["/.well-known/jwks.json"] = (
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body,
        False)
    conf = jwt_conf(keys, jwks_uri={"upstream": "idp", "path": "/.well-known/jwks.json", "refresh": "10m"})
    conf.pop("keys")  # the fetched set only
    gw, up, port, _ = start(gateway_factory, upstream_factory, conf, workers=2,
                            extra_upstreams={"idp": h.upstream_conf([idp.address])})
    tok = jwt.encode(claims(sub="remote"), keys["rsa2"], "RS256", headers={"kid": "jwks-rs"})
    deadline = time.monotonic() + 5
    while True:
        r = get(port, tok)
        if r.status == 200 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["remote"]
    # Every worker got the set (one fetch each), within a few tries.
    for _ in range(20):
        assert get(port, tok).status == 200
    assert 1 <= len([t for t in idp.targets() if t == "/.well-known/jwks.json"]) <= 2


# -------------------------------------------------------------- sources ----

def test_cookie_and_query_sources(keys, gateway_factory, upstream_factory):
    conf = jwt_conf(keys, token_from=["header:Authorization", "cookie:session", "query:access_token"])
    gw, up, port, _ = start(gateway_factory, upstream_factory, conf)
    tok = token(keys, sub="cookie-user")
    r = get(port, headers=[("Cookie", "theme=dark; session=%s; lang=en" % tok)])
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["cookie-user"]
    assert hv(r, "Cookie") == ["theme=dark; lang=en"]  # strip_token
    r = get(port, headers=[("Cookie", "a=b"), ("Cookie", "session=" + tok)])
    assert r.status == 200, r
    assert hv(r, "Cookie") == ["a=b"]
    qtok = token(keys, sub="query-user")
    r = get(port, target="/users/1?x=1&access_token=" + qtok)
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["query-user"]
    # The header wins over the others; a bad cookie token is a bad token.
    r = get(port, token(keys, sub="header-user"), headers=[("Cookie", "session=" + tok)])
    assert hv(r, "X-User-Id") == ["header-user"]
    assert_401(get(port, headers=[("Cookie", "session=abc")]), "malformed")
    r = get(port, headers=[("Cookie", "sessionx=" + tok)])
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Bearer realm="tollgate"'


SOURCES = ["header:Authorization", "cookie:session", "query:access_token"]


def upstream_target(r):
    return json.loads(r.body)["target"]


def test_query_token_twice_refused(keys, gateway_factory, upstream_factory):
    """Two token parameters, however the second one's name is spelled: the
    gateway would verify one and the upstream might read the other."""
    gw, up, port, admin = start(gateway_factory, upstream_factory, jwt_conf(keys, token_from=SOURCES), admin=True)
    good, other = token(keys, sub="alice"), token(keys, sub="mallory")
    forged = raw_token({"alg": "HS256", "typ": "JWT", "kid": "HS256"}, claims(sub="admin"), "HS256", b"k" * 32)
    queries = ["access_token=%s&access_token=%s" % (good, forged),
               "access_token=%s&access_token=%s" % (forged, good),
               "access_token=%s&%%61ccess_token=%s" % (good, forged),
               "%%61ccess_token=%s&access_token=%s" % (forged, good),
               "x=1&access_token=%s&access%%5Ftoken=%s" % (good, other),
               "access_token=%s&%%61%%63%%63%%65%%73%%73_token=%s" % (good, forged),
               "access_token=%s&access_token" % good,
               "access_token=%s&access_token=" % good]
    for q in queries:
        assert_invalid_request(get(port, target="/users/1?" + q))
    assert up.requests == 0
    assert metrics(admin)[("tollgate_jwt_rejections_total", "duplicate")] == len(queries)
    # One parameter, its name percent-encoded: it is the token parameter.
    r = get(port, target="/users/1?%61ccess_token=" + good)
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["alice"]
    assert upstream_target(r) == "/users/1"
    # Other parameter names are not it.
    r = get(port, target="/users/1?Access_token=%s&access_tokens=%s" % (forged, forged))
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Bearer realm="tollgate"'


def test_cookie_token_twice_refused(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys, token_from=SOURCES))
    good = token(keys, sub="alice")
    forged = raw_token({"alg": "HS256", "typ": "JWT", "kid": "HS256"}, claims(sub="admin"), "HS256", b"k" * 32)
    cases = [[("Cookie", "session=%s; session=%s" % (good, forged))],
             [("Cookie", "session=%s; session=%s" % (forged, good))],
             [("Cookie", "session=" + good), ("Cookie", "session=" + forged)],  # one per header line
             [("Cookie", "a=b; session=" + good), ("Cookie", "c=d"), ("Cookie", "session=" + forged)],
             [("Cookie", "session=%s; session =%s" % (good, forged))],  # white space around the name
             [("Cookie", "session=%s;session=" % good)]]
    for headers in cases:
        assert_invalid_request(get(port, headers=headers))
    assert up.requests == 0
    # Cookie names compare exactly (RFC 6265): Session is another cookie.
    r = get(port, headers=[("Cookie", "Session=%s; session=%s" % (forged, good))])
    assert r.status == 200, r
    assert hv(r, "X-User-Id") == ["alice"]
    assert hv(r, "Cookie") == ["Session=" + forged]


def test_strip_token_query(keys, gateway_factory, upstream_factory):
    """strip_token rewrites the query sent upstream without the token
    parameter, the other parameters byte for byte."""
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys, token_from=SOURCES))
    tok = token(keys, sub="query-user")
    for q, want in [("x=1&access_token=%s&y=%%20a+b&z" % tok, "/users/1?x=1&y=%20a+b&z"),
                    ("access_token=" + tok, "/users/1"),
                    ("access_token=%s&b=%%2F" % tok, "/users/1?b=%2F"),
                    ("a=&%%61ccess_token=%s" % tok, "/users/1?a="),
                    ("a=1&&access_token=" + tok, "/users/1?a=1&")]:
        r = get(port, target="/users/1?" + q)
        assert r.status == 200, (q, r)
        assert hv(r, "X-User-Id") == ["query-user"]
        assert upstream_target(r) == want, q
        assert tok not in r.body.decode()


def test_strip_token_cookie(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys, token_from=SOURCES))
    tok = token(keys, sub="cookie-user")
    for headers, want in [([("Cookie", "session=" + tok)], []),
                          ([("Cookie", "a=1;session=%s;b=2" % tok)], ["a=1; b=2"]),
                          ([("Cookie", "a=1"), ("Cookie", "session=%s; b=2" % tok)], ["a=1; b=2"]),
                          ([("Cookie", "session=\"%s\"" % tok), ("Cookie", "x=y")], ["x=y"])]:
        r = get(port, headers=headers)
        assert r.status == 200, (headers, r)
        assert hv(r, "X-User-Id") == ["cookie-user"]
        assert hv(r, "Cookie") == want, headers
        assert tok not in r.body.decode()


def test_strip_token_off_keeps_query_and_cookie(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory,
                            jwt_conf(keys, token_from=SOURCES, strip_token=False))
    tok = token(keys)
    r = get(port, target="/users/1?a=1&access_token=" + tok)
    assert upstream_target(r) == "/users/1?a=1&access_token=" + tok
    r = get(port, headers=[("Cookie", "a=1;session=" + tok)])
    assert hv(r, "Cookie") == ["a=1;session=" + tok]


def test_header_only_by_default(keys, gateway_factory, upstream_factory):
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys))
    tok = token(keys)
    r = get(port, target="/users/1?access_token=" + tok, headers=[("Cookie", "session=" + tok)])
    assert r.status == 401 and r.header("WWW-Authenticate") == 'Bearer realm="tollgate"'
    # Scheme is case-insensitive (RFC 6750 2.1 / RFC 9110 11.1).
    assert get(port, headers=[("Authorization", "bearer " + tok)]).status == 200


# --------------------------------------------------------------- libjwt ----

JWT_SIGN = os.path.join(os.environ.get("TOLLGATE_BUILD_DIR", os.path.join(h.REPO, "build")), "tests", "jwt_sign")


def libjwt_token(alg, key_file, payload, header=None):
    """A token made by libjwt (tests/tools/jwt_sign.c): a third implementation,
    neither python-jwt nor the plugin's verifier."""
    args = [JWT_SIGN, alg, key_file, json.dumps(payload)] + ([json.dumps(header)] if header else [])
    out = subprocess.run(args, capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_libjwt_tokens(keys, tmp_path, gateway_factory, upstream_factory):
    assert os.access(JWT_SIGN, os.X_OK), "%s not built (set TOLLGATE_BUILD_DIR)" % JWT_SIGN
    files = {"HS256": tmp_path / "hs256.key", "RS256": tmp_path / "rs.pem", "ES256": tmp_path / "es.pem"}
    files["HS256"].write_bytes(HS["HS256"])
    for alg, key in (("RS256", keys["rsa"]), ("ES256", keys["ES256"])):
        files[alg].write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                 serialization.NoEncryption()))
    gw, up, port, _ = start(gateway_factory, upstream_factory, jwt_conf(keys))
    for alg, f in files.items():
        for kid in (alg, None):
            tok = libjwt_token(alg, str(f), claims(sub="libjwt-" + alg), {"kid": kid} if kid else None)
            r = get(port, tok)
            assert r.status == 200, (alg, kid, r)
            assert hv(r, "X-User-Id") == ["libjwt-" + alg]
    # JWT_ALG_NONE: {"alg":"none"} (libjwt writes no typ for it) and no signature.
    for header in (None, {"kid": "HS256"}, {"kid": "RS256", "typ": "JWT"}):
        tok = libjwt_token("none", "-", claims(sub="admin"), header)
        assert tok.endswith("."), tok
        assert_401(get(port, tok), "unsupported_alg")
    assert up.requests == 6


# --------------------------------------------------------------- config ----

def check_conf(tmp_path, keys, conf):
    cfg = h.gateway_config(h.free_port(), {"up": h.upstream_conf(["127.0.0.1:9"])},
                           [h.route("all", "up", {"path_prefix": "/"})])
    cfg["plugins"] = [{"name": "jwt", "config": conf}]
    p = tmp_path / "check.yaml"
    p.write_text(h.yaml_text(cfg))
    return h.run_check(str(p))


@pytest.mark.parametrize("conf,message", [
    ({"keys": [{"algorithm": "ES256", "public_key": "@rsa.pub.pem"}]}, "ES256 needs an EC key on P-256"),
    ({"keys": [{"algorithm": "ES384", "public_key": "@ES256.pub.pem"}]}, "this key is on prime256v1"),
    ({"keys": [{"algorithm": "RS256", "public_key": "@ES256.pub.pem"}]}, "RS256 needs an RSA key"),
    ({"keys": [{"algorithm": "HS256", "public_key": "@rsa.pub.pem"}]}, "use a secret"),
    ({"keys": [{"algorithm": "HS256", "secret": "short"}]}, "at least 32 bytes"),
    ({"keys": [{"algorithm": "none", "secret": "x" * 40}]}, "unsupported algorithm \"none\""),
    ({"keys": [{"algorithm": "RS256"}]}, "exactly one of"),
    ({"keys": [{"kid": "a", "algorithm": "HS256", "secret": "x" * 40},
               {"kid": "a", "algorithm": "HS256", "secret": "y" * 40}]}, "duplicate kid"),
    ({"keys": []}, "at least one key"),
    ({"jwks": "@nope.json"}, "cannot open"),
    ({"keys": [{"algorithm": "HS256", "secret": "x" * 40}], "scopes": ["a\"b"]}, "invalid value"),
    ({"keys": [{"algorithm": "HS256", "secret": "x" * 40}], "token_from": ["body:x"]}, "header:NAME"),
    ({"keys": [{"algorithm": "HS256", "secret": "x" * 40}], "forward_claims": {"sub": "X User"}},
     "invalid header name"),
    ({"keys": [{"algorithm": "HS256", "secret": "x" * 40}], "leeway": "30"}, ""),
    ({"keys": [{"algorithm": "HS256", "secret": "x" * 40}], "bogus": 1}, "unknown key 'bogus'"),
    ({"jwks_uri": {"upstream": "idp"}}, "missing required key 'path'"),
    ({"jwks_uri": {"upstream": "idp", "path": "no-slash"}}, "must start with"),
])
def test_config_errors(tmp_path, keys, conf, message):
    conf = json.loads(json.dumps(conf).replace("@", keys["dir"] + "/"))
    rc, err = check_conf(tmp_path, keys, conf)
    assert rc != 0, err
    assert message in err, err
    assert re.search(r"check\.yaml:\d+:\d+: ", err), err


def test_example_config_passes():
    rc, err = h.run_check(os.path.join(h.REPO, "conf", "jwt.yaml"))
    assert rc == 0, err
