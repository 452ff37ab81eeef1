#!/usr/bin/env python3
"""Writes the committed seed corpora (fuzz/seeds/<target>/) from the repository's fixtures
(fixtures/, the same files as /work/shared/fixtures) and from the shapes the crates' tests use.
Deterministic: run it again after changing a fixture, and commit what changed.

    python3 fuzz/make_seeds.py
"""
import base64
import hashlib
import hmac
import os
import struct
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SEEDS = os.path.join(ROOT, "fuzz", "seeds")


def write(target, name, data):
    d = os.path.join(SEEDS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def fixture(path):
    with open(os.path.join(ROOT, "fixtures", path), "rb") as f:
        return f.read()


JSON_FIXTURES = [
    "alertmanager/v4.json",
    "cloudevents/batch.json",
    "cloudevents/structured.json",
    "connectsecure/asset-ports.json",
    "connectsecure/critical-problems-found.json",
    "connectsecure/login-failure.json",
    "connectsecure/multiline-unicode.json",
    "connectsecure/new-assets-added.json",
    "falco/falcosidekick.json",
    "soveren/event-new.json",
    "soveren/event-old.json",
    "standard/envelope.json",
    "sysdig/batch.json",
    "sysdig/legacy-policy.json",
]
NDJSON = fixture("sysdig/elastic-integrations-test-sysdig.ndjson")
NDJSON_LINES = [l for l in NDJSON.split(b"\n") if l.strip()]
ACTIVITY = fixture("sysdig/activity.ndjson")


def slug(path):
    return path.replace("/", "-").rsplit(".", 1)[0]


# ---- payloads: selector (content type; 0x80: headers first), then the body ------------------
for p in JSON_FIXTURES:
    sel = b"\x00"
    if p == "cloudevents/structured.json":
        sel = b"\x03"
    elif p == "cloudevents/batch.json":
        sel = b"\x04"
    write("payloads", slug(p), sel + fixture(p))
for i, line in enumerate(NDJSON_LINES):
    write("payloads", f"sysdig-elastic-{i:02}", b"\x00" + line)
write("payloads", "sysdig-elastic-ndjson", b"\x02" + b"\n".join(NDJSON_LINES[:4]) + b"\n")
write("payloads", "sysdig-activity-ndjson", b"\x00" + ACTIVITY)
write(
    "payloads",
    "cloudevents-binary",
    b"\x81ce-specversion: 1.0\nce-type: com.example.object.deleted\nce-source: /mycontext\n"
    b"ce-id: A234-1234-1234\ncontent-type: application/json\n\n{\"a\":1}",
)
write(
    "payloads",
    "soveren-hint",
    b"\x81user-agent: SoverenWebhook/1.0\n\n" + fixture("soveren/event-old.json"),
)
# Findings of the long runs (FUZZING.md), minimized.
write("payloads", "finding-repeated-type",
      b'\x00{"id":"17e047be24848be2ae63efba47ac8870","type":"connection","timestamp":1720453939637554201,'
      b'"clientPort":51234,"type":"audittrail","timestamp":1720453755887574114,"content":{"userId":40123}}')
write("payloads", "connectsecure-bad-escape",
      b"\x00{\"subject\":\"Asset Ports\",\"body\":\"Open Port 443\\ Discovered for Asset 10.0.0.1\"}")

# ---- framing: selector (content type), then the body -------------------------------------
write("framing", "array", b"\x00" + fixture("sysdig/batch.json"))
write("framing", "ndjson", b"\x00" + b"\n".join(NDJSON_LINES[:3]) + b"\n")
write("framing", "ndjson-crlf-blank", b"\x02" + b"\r\n\r\n".join(NDJSON_LINES[:2]) + b"\r\n  \n")
write("framing", "object", b"\x01" + fixture("falco/falcosidekick.json"))
write("framing", "pretty-object", b"\x00{\n  \"a\": 1,\n  \"b\": [1, 2]\n}\n")
write("framing", "bad-line", b"\x02{\"a\":1}\n{\"a\":\n{\"b\":2}\n")
write("framing", "array-nested", b"\x00 [ {\"a\":[{}]},\n  {\"b\":2}, 3, \"x\", null ]")

# ---- verify: selector (preset index), header lines, empty line, body -----------------------
BODY = b'{"type":"invoice.paid","data":{"id":"in_1","amount":4200}}'
TS = "1700000000"
MSG = "msg_1"
# The target's key: generate_key([7; 32]) -> whsec_ + base64 of 24 sevens. Whsec schemes
# decode it; the others (Literal) use the text's bytes.
WHSEC = "whsec_" + base64.b64encode(bytes([7] * 24)).decode()
DECODED = bytes([7] * 24)
LITERAL = WHSEC.encode()


def mac(key, content, algo=hashlib.sha256):
    return hmac.new(key, content, algo).digest()


def b64(d):
    return base64.b64encode(d).decode()


PRESETS = [
    # (index, name, headers)
    (0, "standard-webhooks", [
        ("webhook-id", MSG), ("webhook-timestamp", TS),
        ("webhook-signature", "v1,bad v1," + b64(mac(DECODED, f"{MSG}.{TS}.".encode() + BODY)))]),
    (1, "svix", [
        ("svix-id", MSG), ("svix-timestamp", TS),
        ("svix-signature", "v1," + b64(mac(DECODED, f"{MSG}.{TS}.".encode() + BODY)))]),
    (2, "soveren", [("x-soveren-signature", "sha256=" + mac(LITERAL, BODY).hex())]),
    (3, "github", [("x-hub-signature-256", "sha256=" + mac(LITERAL, BODY).hex())]),
    (4, "github-sha1", [("x-hub-signature", "sha1=" + mac(LITERAL, BODY, hashlib.sha1).hex())]),
    (5, "stripe", [("stripe-signature",
                    f"t={TS},v1=" + mac(LITERAL, f"{TS}.".encode() + BODY).hex() + ",v0=00")]),
    (6, "slack", [("x-slack-request-timestamp", TS),
                  ("x-slack-signature", "v0=" + mac(LITERAL, f"v0:{TS}:".encode() + BODY).hex())]),
    (7, "zoom", [("x-zm-request-timestamp", TS),
                 ("x-zm-signature", "v0=" + mac(LITERAL, f"v0:{TS}:".encode() + BODY).hex())]),
    (8, "shopify", [("x-shopify-hmac-sha256", b64(mac(LITERAL, BODY)))]),
    (9, "standard-webhooks-v1a", [
        ("webhook-id", MSG), ("webhook-timestamp", TS),
        ("webhook-signature", "v1a," + b64(bytes(range(64))))]),
    (10, "discord", [("x-signature-timestamp", TS), ("x-signature-ed25519", bytes(range(64)).hex())]),
]
for index, name, headers in PRESETS:
    head = "".join(f"{k}: {v}\n" for k, v in headers)
    write("verify", name, bytes([index]) + head.encode() + b"\n" + BODY)
write("verify", "auth-headers", b"\x00authorization: Basic dXNlcjpwYXNzOndvcmQ=\n"
      b"x-api-key: s3cret\n\n" + WHSEC.encode())
write("verify", "bearer", b"\x03authorization: Bearer t0ken\n\nv0:{ts}:{id}.{ts}.{body}")

# ---- sysdig_config: the document ----------------------------------------------------------
write("sysdig_config", "bare-json", '{"endpoint":"https://siem.example.com/hook","auth":"BASIC_AUTH",'
      '"secret":"user:password","output":"ndjson"}')
write("sysdig_config", "dragent-yaml", """local_forwarding:
  enabled: true
  integrations:
    - type: WEBHOOK
      channels: [SECURE_EVENTS_POLICIES]
      configuration:
        endpoint: https://siem.example.com/hook
        auth: SIGNATURE
        secret: s3cr3t-key
        headers:
          - key: X-Tenant
            value: blue
        timestampFormat: milliseconds
""")
write("sysdig_config", "several-integrations", """
customerid: 0123
local_forwarding:
  enabled: true
  transmit_message_types: [POLICY_EVENTS]
  integrations:
    - type: SYSLOG
      configuration: {address: 10.0.0.1}
    - type: WEBHOOK
      channels: [ACTIVITY_AUDIT, SECURE_EVENTS_POLICIES]
      configuration:
        endpoint: https://audit.example.com/in
        auth: BASIC_AUTH
        secret: auditor:pa55-w0rd-9931
        output: ndjson
        insecure: true
        timestampFormat: milliseconds
    - type: WEBHOOK
      configuration:
        endpoint: https://everything.example.com/in
        auth: BEARER_TOKEN
        secret: 123456
""")
write("sysdig_config", "integration-entry", """type: WEBHOOK
channels: [SECURE_EVENTS_POLICIES]
configuration:
  endpoint: http://10.0.0.2:8080/in
""")
write("sysdig_config", "snapshot-json",
      '{"version":1,"endpoints":[{"name":"a","url":"https://a.example/in"},'
      '{"name":"s","url":"https://s.example/","auth":{"type":"signature","keys":[{"secret":"k"}]}}]}')
write("sysdig_config", "snapshot-yaml", "version: 1\nendpoints:\n  - name: a\n    url: https://a.example/in\n")

# ---- template: selector, then lines: source, value, rules, response -----------------------
write("template", "url", "\x00https://idp.example/check?u=%username%&ip=%remote_ip%&h=%headers.X-Trace%&p=100%%&e=%41\n"
      "a&b c/#?\nallow data.allowed = true;deny data.user.groups.0 ~ blocked\n{\"data\":{\"allowed\":true}}")
write("template", "header", "\x01Bearer %device_id%-%groups%\nx\\r\\nInjected: 1\ndeny status != ok\ncb({\"status\":\"ok\"});")
write("template", "json-body", "\x02{\"user\":\"%username%\",\"groups\":\"%group_names%\",\"n\":1}\n"
      "q\"uo\\\\te\\n\nallow user ?;deny user = x\n{\"user\":\"x\"}")
write("template", "tenant", "\x82{\"t\":\"%tenant%\",\"h\":\"%headers.Host%\"}\nt\nallow a.b.c ~ z\n[1,2,{\"a\":{\"b\":{\"c\":\"xyz\"}}}]")

# ---- receiver: selector (decoder | 0x08 gzip | 0x10 signed | method), head, body ---------
DECODERS = {"json": 0, "detect": 1, "sysdig": 2, "connectsecure": 3, "raw": 4}
JSON_CT = b"content-type: application/json\n"
write("receiver", "json", bytes([0]) + JSON_CT + b"\n" + BODY)
write("receiver", "detect-sysdig", bytes([1]) + JSON_CT + b"\n" + fixture("sysdig/batch.json"))
write("receiver", "detect-ndjson", bytes([1]) + b"content-type: application/x-ndjson\n\n" + ACTIVITY)
write("receiver", "sysdig-gzip", bytes([2 | 0x08]) + JSON_CT + b"\n" + fixture("sysdig/batch.json"))
write("receiver", "connectsecure", bytes([3]) + JSON_CT + b"\n" + fixture("connectsecure/asset-ports.json"))
write("receiver", "connectsecure-form", bytes([3]) + b"content-type: application/x-www-form-urlencoded\n\n"
      b"subject=Asset+Ports&body=Open+Port+443+Discovered")
write("receiver", "raw-signed", bytes([4 | 0x10]) + b"content-type: text/plain\n\nhello")
write("receiver", "raw-gzip-header", bytes([4]) + b"content-type: application/json\ncontent-encoding: gzip\n\n"
      + zlib.compressobj(9, zlib.DEFLATED, 31).compress(BODY) + b"")
gz = zlib.compressobj(9, zlib.DEFLATED, 31)
write("receiver", "raw-gzip-two-members", bytes([4]) + b"content-type: application/json\ncontent-encoding: gzip\n\n"
      + (lambda a: a + a)(gz.compress(b"[1,") + gz.flush()))
write("receiver", "json-put-signed", bytes([0 | 0x10 | 0x20]) + JSON_CT + b"\n" + BODY)

# ---- outbox: a segment file ----------------------------------------------------------------


def frame(kind, payload):
    crc = zlib.crc32(bytes([kind]) + payload) & 0xFFFFFFFF
    return struct.pack("<II", len(payload), crc) + bytes([kind]) + payload


def s(text):
    b = text.encode()
    return struct.pack("<H", len(b)) + b


def opt(text):
    return b"\x00" if text is None else b"\x01" + s(text)


def seqs(xs):
    return struct.pack("<I", len(xs)) + b"".join(struct.pack("<Q", x) for x in xs)


def event(eid, subject, body):
    return (s(eid) + s(subject) + struct.pack("<Q", 42) + opt("host") + opt("acme")
            + struct.pack("<H", 1) + s("eu") + struct.pack("<I", len(body)) + body)


def attempt():
    return struct.pack("<QHQ", 1_700_000_000_000, 503, 1500) + s("503 Service Unavailable")


HEADER = b"WHOUTBX1" + struct.pack("<QQ", 1, 1)
EVENT = frame(1, struct.pack("<QQ", 1, 1_700_000_000_000) + struct.pack("<H", 2) + s("siem") + s("archive")
              + event("evt_1", "policy.runtime", b'{"a":1}'))
SETTLE = frame(2, s("siem") + bytes([1]) + opt("msg_1") + seqs([1]))
BATCH = frame(3, s("siem") + s("msg_1") + struct.pack("<IQQ", 1, 1_700_000_000_000, 1_700_000_001_000)
              + b"\x01" + attempt() + seqs([1]) + struct.pack("<I", 1) + s("evt_1"))
DEAD = frame(4, struct.pack("<Q", 1) + s("siem") + struct.pack("<Q", 1_700_000_000_000) + s("gave up")
             + opt("msg_1") + struct.pack("<H", 1) + attempt() + event("evt_1", "policy.runtime", b"[1]"))
REMOVED = frame(5, seqs([1, 2]))
write("outbox", "event-log", HEADER + EVENT + BATCH + SETTLE)
write("outbox", "event-log-zero-tail", HEADER + EVENT + SETTLE + bytes(64))
write("outbox", "event-log-torn", HEADER + EVENT + BATCH[: len(BATCH) // 2])
write("outbox", "dead-log", HEADER + DEAD + REMOVED)
corrupt = bytearray(HEADER + EVENT + SETTLE)
corrupt[len(HEADER) + len(EVENT) + 12] ^= 0x40
write("outbox", "event-log-corrupt", bytes(corrupt))
write("outbox", "header-only", HEADER)
