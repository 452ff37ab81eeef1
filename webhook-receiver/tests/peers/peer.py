"""The Python side of the interop tests (webhook-receiver/tests/receiver/interop.rs).

Reads a JSON array of operations on stdin, runs each with the providers' own libraries
(stripe, slack_sdk, svix, standardwebhooks, PyNaCl; Zoom has no library, so its signature is
computed the way Zoom's documentation shows, with hmac), and prints a JSON array of results.
Nothing here reimplements a provider's scheme where a library exists: the point is to check
the SDK against the libraries real senders and receivers use.

Operations:
  {"op": "sign", "lib": ..., "secret": ..., "body": ..., "id": ..., "ts": ...}
      -> {"headers": {...}}
  {"op": "verify", "lib": ..., "secret": ..., "body": ..., "headers": {...}}
      -> {"ok": bool, "error": str}
  {"op": "handshake", "provider": "slack"|"zoom"|"discord", "url": ..., "secret": ...,
   "forge": bool} -> {"status": int, "body": str, "expected": ...}
"""

import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timezone

import nacl.exceptions
import nacl.signing
import slack_sdk.signature
import standardwebhooks
import stripe
import svix.webhooks


def sign(op):
    lib, secret, body = op["lib"], op["secret"], op["body"]
    ts = int(op["ts"])
    msg_id = op.get("id", "")
    when = datetime.fromtimestamp(ts, tz=timezone.utc)
    if lib == "standardwebhooks":
        sig = standardwebhooks.Webhook(secret).sign(msg_id, when, body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}
    if lib == "svix":
        sig = svix.webhooks.Webhook(secret).sign(msg_id, when, body)
        return {"svix-id": msg_id, "svix-timestamp": str(ts), "svix-signature": sig}
    if lib == "stripe":
        header = stripe.WebhookSignature.generate_signature_header(body, secret, timestamp=ts)
        return {"stripe-signature": header}
    if lib == "slack":
        verifier = slack_sdk.signature.SignatureVerifier(signing_secret=secret)
        sig = verifier.generate_signature(timestamp=str(ts), body=body)
        return {"x-slack-request-timestamp": str(ts), "x-slack-signature": sig}
    if lib == "discord":
        # Discord signs with Ed25519 over timestamp + body; `secret` is the hex seed.
        key = nacl.signing.SigningKey(bytes.fromhex(secret))
        signed = key.sign(f"{ts}{body}".encode())
        return {"x-signature-ed25519": signed.signature.hex(), "x-signature-timestamp": str(ts)}
    if lib == "standardwebhooks-v1a":
        key = nacl.signing.SigningKey(bytes.fromhex(secret))
        signed = key.sign(f"{msg_id}.{ts}.{body}".encode())
        sig = "v1a," + base64.b64encode(signed.signature).decode()
        return {"webhook-id": msg_id, "webhook-timestamp": str(ts), "webhook-signature": sig}
    raise ValueError(f"unknown lib {lib}")


def verify(op):
    lib, secret, body, headers = op["lib"], op["secret"], op["body"], op["headers"]
    try:
        if lib == "standardwebhooks":
            standardwebhooks.Webhook(secret).verify(body.encode(), headers)
        elif lib == "svix":
            svix.webhooks.Webhook(secret).verify(body.encode(), headers)
        elif lib == "stripe":
            stripe.WebhookSignature.verify_header(
                body, headers["stripe-signature"], secret, tolerance=300
            )
        elif lib == "slack":
            verifier = slack_sdk.signature.SignatureVerifier(signing_secret=secret)
            if not verifier.is_valid_request(body, headers):
                raise ValueError("slack_sdk: signature is not valid")
        elif lib == "discord":
            key = nacl.signing.VerifyKey(bytes.fromhex(secret))
            ts = headers["x-signature-timestamp"]
            key.verify(f"{ts}{body}".encode(), bytes.fromhex(headers["x-signature-ed25519"]))
        elif lib == "standardwebhooks-v1a":
            key = nacl.signing.VerifyKey(bytes.fromhex(secret))
            signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{body}".encode()
            entries = [e for e in headers["webhook-signature"].split(" ") if e.startswith("v1a,")]
            if not entries:
                raise ValueError("no v1a entry")
            key.verify(signed, base64.b64decode(entries[0][4:]))
        else:
            raise ValueError(f"unknown lib {lib}")
    except (Exception, nacl.exceptions.BadSignatureError) as e:  # noqa: BLE001
        return {"ok": False, "error": f"{type(e).__name__}: {e}"}
    return {"ok": True, "error": ""}


def post(url, body, headers):
    req = urllib.request.Request(url, data=body.encode(), method="POST")
    req.add_header("content-type", "application/json")
    for k, v in headers.items():
        req.add_header(k, v)
    try:
        with urllib.request.urlopen(req, timeout=10) as res:
            return res.status, res.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def handshake(op):
    """Sends a provider's handshake as the provider does, and says what its docs expect back."""
    provider, url, secret, forge = op["provider"], op["url"], op["secret"], op["forge"]
    ts = str(int(time.time()))
    if provider == "slack":
        # https://api.slack.com/events/url_verification: answer with the challenge.
        challenge = "3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P"
        body = json.dumps(
            {"token": "Jhj5dZrVaK7ZwHHjRyZWjbDl", "challenge": challenge, "type": "url_verification"}
        )
        key = "wrong-secret" if forge else secret
        sig = slack_sdk.signature.SignatureVerifier(key).generate_signature(timestamp=ts, body=body)
        status, text = post(url, body, {"x-slack-request-timestamp": ts, "x-slack-signature": sig})
        accepted = [{"challenge": challenge}]
        try:
            answer = json.loads(text)
        except ValueError:
            answer = text
        return {"status": status, "body": text, "ok": answer in accepted or text == challenge}
    if provider == "zoom":
        # Zoom's docs: encryptedToken = hex(HMAC-SHA256(secret token, plainToken)), and
        # x-zm-signature = v0= hex(HMAC-SHA256(secret token, "v0:{ts}:{body}")).
        plain = "qgg8vlvZRS6UYooatFL8Aw"
        body = json.dumps(
            {"payload": {"plainToken": plain}, "event_ts": int(ts) * 1000,
             "event": "endpoint.url_validation"}
        )
        key = ("wrong-" + secret) if forge else secret
        sig = "v0=" + hmac.new(key.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
        status, text = post(url, body, {"x-zm-request-timestamp": ts, "x-zm-signature": sig})
        expected = {
            "plainToken": plain,
            "encryptedToken": hmac.new(secret.encode(), plain.encode(), hashlib.sha256).hexdigest(),
        }
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        return {"status": status, "body": text, "ok": answer == expected}
    if provider == "discord":
        # Discord's interactions docs: a PING (type 1) is answered with {"type": 1}; Discord
        # also sends requests with bad signatures, which must be refused with 401.
        body = json.dumps({"application_id": "1", "id": "2", "token": "t", "type": 1, "version": 1})
        seed = bytes.fromhex(secret)
        if forge:
            seed = bytes(b ^ 0xFF for b in seed)  # another key
        signed = nacl.signing.SigningKey(seed).sign(f"{ts}{body}".encode())
        status, text = post(
            url, body,
            {"x-signature-ed25519": signed.signature.hex(), "x-signature-timestamp": ts},
        )
        try:
            answer = json.loads(text)
        except ValueError:
            answer = None
        return {"status": status, "body": text, "ok": answer == {"type": 1}}
    raise ValueError(f"unknown provider {provider}")


def main():
    results = []
    for op in json.load(sys.stdin):
        kind = op["op"]
        if kind == "sign":
            results.append({"headers": sign(op)})
        elif kind == "verify":
            results.append(verify(op))
        elif kind == "handshake":
            results.append(handshake(op))
        else:
            raise ValueError(f"unknown op {kind}")
    json.dump(results, sys.stdout)


if __name__ == "__main__":
    main()
