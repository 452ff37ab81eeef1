// The Node side of the interop tests (webhook-receiver/tests/receiver/interop.rs): the npm
// packages standardwebhooks, svix and @octokit/webhooks-methods sign and verify; same protocol
// as peer.py (a JSON array of operations on stdin, a JSON array of results on stdout).
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import path from "node:path";
import { pathToFileURL } from "node:url";

const modules = process.env.WEBHOOK_INTEROP_NODE_MODULES;
if (!modules) throw new Error("WEBHOOK_INTEROP_NODE_MODULES is not set");
const require = createRequire(path.join(modules, "peer-resolver.js"));
const standard = require("standardwebhooks");
const svix = require("svix");
// ESM only: import the entry its package.json exports for Node.
const octokitDir = path.join(modules, "@octokit", "webhooks-methods");
const octokitExports = JSON.parse(readFileSync(path.join(octokitDir, "package.json"), "utf8")).exports["."];
const octokit = await import(pathToFileURL(path.join(octokitDir, octokitExports.node.import)).href);

async function sign(op) {
  const when = new Date(op.ts * 1000);
  switch (op.lib) {
    case "standardwebhooks":
      return {
        "webhook-id": op.id,
        "webhook-timestamp": String(op.ts),
        "webhook-signature": new standard.Webhook(op.secret).sign(op.id, when, op.body),
      };
    case "svix":
      return {
        "svix-id": op.id,
        "svix-timestamp": String(op.ts),
        "svix-signature": new svix.Webhook(op.secret).sign(op.id, when, op.body),
      };
    case "github":
      return { "x-hub-signature-256": await octokit.sign(op.secret, op.body) };
    default:
      throw new Error(`unknown lib ${op.lib}`);
  }
}

async function verify(op) {
  try {
    switch (op.lib) {
      case "standardwebhooks":
        new standard.Webhook(op.secret).verify(op.body, op.headers);
        break;
      case "svix":
        new svix.Webhook(op.secret).verify(op.body, op.headers);
        break;
      case "github":
        if (!(await octokit.verify(op.secret, op.body, op.headers["x-hub-signature-256"]))) {
          throw new Error("@octokit/webhooks-methods: signature does not match");
        }
        break;
      default:
        throw new Error(`unknown lib ${op.lib}`);
    }
    return { ok: true, error: "" };
  } catch (e) {
    return { ok: false, error: String(e) };
  }
}

let input = "";
for await (const chunk of process.stdin) input += chunk;
const results = [];
for (const op of JSON.parse(input)) {
  if (op.op === "sign") results.push({ headers: await sign(op) });
  else if (op.op === "verify") results.push(await verify(op));
  else throw new Error(`unknown op ${op.op}`);
}
process.stdout.write(JSON.stringify(results));
