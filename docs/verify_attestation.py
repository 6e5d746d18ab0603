"""Verify an assay attestation (DSSE envelope, in-toto Statement v1) without assay.

usage: python verify_attestation.py ENVELOPE PUBLIC_KEY.pem [ARTIFACT]
Needs only the standard library and `cryptography`. Exit 0 valid, 1 invalid.
"""
import base64, hashlib, json, sys
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

env = json.load(open(sys.argv[1]))
key = serialization.load_pem_public_key(open(sys.argv[2], "rb").read())
spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
kid, ptype = hashlib.sha256(spki).hexdigest(), env["payloadType"].encode()
payload = base64.b64decode(env["payload"], validate=True)
pae = b"DSSEv1 %d %s %d %s" % (len(ptype), ptype, len(payload), payload)
assert ptype == b"application/vnd.in-toto+json", "payload type"
for s in env["signatures"]:
    if s.get("keyid") not in (kid, "", None): continue
    try:
        args = (ec.ECDSA(hashes.SHA256()),) if isinstance(key, ec.EllipticCurvePublicKey) else ()
        key.verify(base64.b64decode(s["sig"]), pae, *args); break
    except Exception: pass
else: sys.exit("INVALID: no signature by this key verifies")
stmt = json.loads(payload)
assert stmt["_type"] == "https://in-toto.io/Statement/v1", "statement type"
if len(sys.argv) > 3:
    digest = hashlib.sha256(open(sys.argv[3], "rb").read()).hexdigest()
    if digest not in [s["digest"]["sha256"] for s in stmt["subject"]]: sys.exit("INVALID: subject")
print("OK", stmt["predicateType"], json.dumps(stmt["subject"]))
