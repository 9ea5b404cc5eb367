#!/usr/bin/python3
"""Makes the jwt unit-test fixtures with an implementation independent of ours
(python3-jwt and python3-cryptography). Run from anywhere with Debian's python:

    /usr/bin/python3 tests/unit/data/jwt/gen.py

Writes into this directory: keys (*.pem, secrets in tokens.json), jwks.json,
tokens.json (cases for test_jwt_verify) and der.json (r||s -> DER vectors).
The outputs are committed; rerunning changes every key and token."""

import base64
import json
import os

import jwt
from cryptography.hazmat.primitives import hashes, hmac, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
FAR = 4102444800  # 2100-01-01


def b64(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def b64int(i, n=None):
    n = n or (i.bit_length() + 7) // 8
    return b64(i.to_bytes(n, "big"))


def write_pem(name, key):
    pub = key.public_key().public_bytes(serialization.Encoding.PEM,
                                        serialization.PublicFormat.SubjectPublicKeyInfo)
    with open(os.path.join(HERE, name + ".pub.pem"), "wb") as f:
        f.write(pub)
    return pub


def raw(header, payload, alg, key):
    """Compact JWS by hand: header/payload are dicts or raw bytes."""
    h = header if isinstance(header, bytes) else json.dumps(header, separators=(",", ":")).encode()
    p = payload if isinstance(payload, bytes) else json.dumps(payload, separators=(",", ":")).encode()
    si = (b64(h) + "." + b64(p)).encode()
    md = {"256": hashes.SHA256(), "384": hashes.SHA384(), "512": hashes.SHA512()}[alg[2:]]
    if alg.startswith("HS"):
        m = hmac.HMAC(key, md)
        m.update(si)
        sig = m.finalize()
    elif alg.startswith("RS"):
        sig = key.sign(si, padding.PKCS1v15(), md)
    else:
        der = key.sign(si, ec.ECDSA(md))
        r, s = decode_dss_signature(der)
        n = {"256": 32, "384": 48, "512": 66}[alg[2:]]
        sig = r.to_bytes(n, "big") + s.to_bytes(n, "big")
    return si.decode() + "." + b64(sig)


def main():
    rsa1 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa2 = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    rsa_small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    ecs = {c: ec.generate_private_key(k) for c, k in
           (("256", ec.SECP256R1()), ("384", ec.SECP384R1()), ("512", ec.SECP521R1()))}
    ec_k1 = ec.generate_private_key(ec.SECP256K1())
    rsa_pem = write_pem("rsa", rsa1)
    write_pem("rsa_small", rsa_small)
    write_pem("ec_k1", ec_k1)
    for c, k in ecs.items():
        write_pem("ec" + c, k)
    secrets = {"hs256": "unit-test-hs256-secret-0123456789abcdef",
               "hs384": "unit-test-hs384-secret-0123456789abcdef-0123456789",
               "hs512": "unit-test-hs512-secret-0123456789abcdef-0123456789abcdef-0123456789"}

    ecj = ecs["256"].public_key().public_numbers()
    rn = rsa2.public_key().public_numbers()
    jwks = {"keys": [
        {"kty": "RSA", "kid": "j-rs", "use": "sig", "alg": "RS256", "n": b64int(rn.n), "e": b64int(rn.e)},
        {"kty": "EC", "kid": "j-es", "crv": "P-256", "x": b64int(ecj.x, 32), "y": b64int(ecj.y, 32)},
        {"kty": "RSA", "kid": "j-enc", "use": "enc", "n": b64int(rn.n), "e": b64int(rn.e)},
        {"kty": "oct", "kid": "j-oct", "k": b64(b"ignored")},
    ]}
    with open(os.path.join(HERE, "jwks.json"), "w") as f:
        json.dump(jwks, f, indent=1)

    claims = {"sub": "alice", "exp": FAR}
    hs256, hs384, hs512 = (secrets[k].encode() for k in ("hs256", "hs384", "hs512"))
    cases = []

    def case(name, token, expect):
        cases.append({"name": name, "token": token, "expect": expect})

    # The key set the suite builds (see test_jwt_verify.c):
    #   rs: RS256 rsa | rs512: RS512 rsa | (no kid) RS384 rsa | es256/es384/es512
    #   hs: HS256 hs256 | (no kid) HS384 hs384 | (no kid) HS512 hs512 | jwks.json
    case("rs256", jwt.encode(claims, rsa1, "RS256", headers={"kid": "rs"}), "ok")
    case("rs512", jwt.encode(claims, rsa1, "RS512", headers={"kid": "rs512"}), "ok")
    case("rs384_no_kid", jwt.encode(claims, rsa1, "RS384"), "ok")
    for c in ("256", "384", "512"):
        case("es" + c, jwt.encode(claims, ecs[c], "ES" + c, headers={"kid": "es" + c}), "ok")
    case("hs256", jwt.encode(claims, hs256, "HS256", headers={"kid": "hs"}), "ok")
    case("hs256_no_kid", jwt.encode(claims, hs256, "HS256"), "ok")
    case("hs384_no_kid", jwt.encode(claims, hs384, "HS384"), "ok")
    case("hs512_no_kid", jwt.encode(claims, hs512, "HS512"), "ok")
    case("jwks_rs", jwt.encode(claims, rsa2, "RS256", headers={"kid": "j-rs"}), "ok")
    case("jwks_es", jwt.encode(claims, ecs["256"], "ES256", headers={"kid": "j-es"}), "ok")
    case("at_jwt_typ", jwt.encode(claims, hs256, "HS256", headers={"typ": "at+JWT"}), "ok")
    case("application_typ", jwt.encode(claims, hs256, "HS256", headers={"typ": "application/jwt"}), "ok")

    # Attacks and mistakes.
    case("alg_none", jwt.encode(claims, None, "none"), "unsupported_alg")
    case("alg_none_kid", raw({"alg": "none", "typ": "JWT", "kid": "hs"}, claims, "HS256", hs256), "unsupported_alg")
    case("alg_lowercase", raw({"alg": "rs256", "typ": "JWT", "kid": "rs"}, claims, "RS256", rsa1), "unsupported_alg")
    case("alg_unknown", raw({"alg": "PS256", "typ": "JWT"}, claims, "RS256", rsa1), "unsupported_alg")
    case("hs_with_rsa_pem_kid", raw({"alg": "HS256", "typ": "JWT", "kid": "rs"}, claims, "HS256", rsa_pem),
         "unsupported_alg")
    case("hs_with_rsa_pem", raw({"alg": "HS256", "typ": "JWT"}, claims, "HS256", rsa_pem), "bad_signature")
    case("rs_token_hs_kid", raw({"alg": "RS256", "typ": "JWT", "kid": "hs"}, claims, "RS256", rsa1),
         "unsupported_alg")
    case("alg_kid_mismatch", raw({"alg": "RS512", "typ": "JWT", "kid": "rs"}, claims, "RS512", rsa1),
         "unsupported_alg")
    case("es384_token_es256_kid", raw({"alg": "ES384", "typ": "JWT", "kid": "es256"}, claims, "ES384", ecs["384"]),
         "unsupported_alg")
    case("unknown_kid", jwt.encode(claims, rsa1, "RS256", headers={"kid": "nope"}), "unknown_key")
    case("wrong_rsa_key", jwt.encode(claims, rsa2, "RS256", headers={"kid": "rs"}), "bad_signature")
    case("wrong_hs_secret", jwt.encode(claims, b"x" * 40, "HS256", headers={"kid": "hs"}), "bad_signature")
    good = jwt.encode(claims, rsa1, "RS256", headers={"kid": "rs"})
    h, p, s = good.split(".")
    case("tampered_payload", h + "." + b64(json.dumps({"sub": "admin", "exp": FAR}).encode()) + "." + s,
         "bad_signature")
    case("empty_signature", h + "." + p + ".", "bad_signature")
    case("truncated_signature", h + "." + p + "." + s[:-2], "bad_signature")
    es = jwt.encode(claims, ecs["256"], "ES256", headers={"kid": "es256"})
    eh, ep, esig = es.split(".")
    der = ecs["256"].sign((eh + "." + ep).encode(), ec.ECDSA(hashes.SHA256()))
    case("es256_der_signature", eh + "." + ep + "." + b64(der), "bad_signature")
    case("two_segments", h + "." + p, "malformed")
    case("four_segments", good + ".x", "malformed")
    case("padded_header", h + "==." + p + "." + s, "malformed")
    case("standard_b64_char", h + "." + p + "." + s[:-1] + "+", "malformed")
    case("payload_not_json", h + "." + b64(b"not json") + "." + s, "malformed")
    case("payload_array", raw({"alg": "HS256", "typ": "JWT", "kid": "hs"}, b"[1,2]", "HS256", hs256), "malformed")
    case("header_not_json", b64(b"{alg") + "." + p + "." + s, "malformed")
    case("header_no_alg", raw({"typ": "JWT"}, claims, "HS256", hs256), "malformed")
    # "typ" is optional (RFC 7519 5.1); present, it says JWT or at+jwt (RFC 9068).
    case("header_no_typ", raw({"alg": "HS256", "kid": "hs"}, claims, "HS256", hs256), "ok")
    case("header_typ_application_at_jwt", raw({"alg": "HS256", "typ": "application/AT+JWT", "kid": "hs"}, claims,
                                              "HS256", hs256), "ok")
    case("header_bad_typ", raw({"alg": "HS256", "typ": "JWE", "kid": "hs"}, claims, "HS256", hs256), "malformed")
    case("header_typ_secevent", raw({"alg": "HS256", "typ": "secevent+jwt", "kid": "hs"}, claims, "HS256", hs256),
         "malformed")
    case("header_typ_empty", raw({"alg": "HS256", "typ": "", "kid": "hs"}, claims, "HS256", hs256), "malformed")
    case("header_typ_null", raw({"alg": "HS256", "typ": None, "kid": "hs"}, claims, "HS256", hs256), "malformed")
    case("header_typ_number", raw({"alg": "HS256", "typ": 1, "kid": "hs"}, claims, "HS256", hs256), "malformed")
    case("header_crit", raw({"alg": "HS256", "typ": "JWT", "kid": "hs", "crit": ["exp"]}, claims, "HS256", hs256),
         "malformed")
    case("header_kid_number", raw({"alg": "HS256", "typ": "JWT", "kid": 7}, claims, "HS256", hs256), "malformed")
    case("header_duplicate_alg", raw(b'{"alg":"HS256","typ":"JWT","alg":"none"}', claims, "HS256", hs256),
         "malformed")
    case("payload_duplicate_sub", raw({"alg": "HS256", "typ": "JWT", "kid": "hs"},
                                      b'{"sub":"alice","sub":"admin"}', "HS256", hs256), "malformed")
    big = dict(claims, pad="x" * 9000)
    case("oversized", jwt.encode(big, hs256, "HS256", headers={"kid": "hs"}), "malformed")
    case("empty", "", "malformed")
    case("dots_only", "..", "malformed")

    with open(os.path.join(HERE, "tokens.json"), "w") as f:
        json.dump({"secrets": secrets, "cases": cases}, f, indent=1)

    # r||s -> DER vectors: edge values with the high bit set and leading zeros.
    vecs = []
    for n, (r, s) in ((32, (1, 2)), (32, (2**255, 2**255 + 1)), (32, (0x7f << 248, 0xff << 248)),
                      (32, (0x00ff, 2**256 - 1)), (48, (2**383 + 5, 3)), (66, (2**520, 2**520 + 7)),
                      (66, (2**521 - 1, 2**521 - 2)), (66, (1, 1))):
        rs = r.to_bytes(n, "big") + s.to_bytes(n, "big")
        vecs.append({"raw": rs.hex(), "der": encode_dss_signature(r, s).hex()})
    with open(os.path.join(HERE, "der.json"), "w") as f:
        json.dump(vecs, f, indent=1)


if __name__ == "__main__":
    main()
