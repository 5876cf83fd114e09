// The TypeScript client (openapi-fetch over the types openapi-typescript
// generates from rest/openapi.yaml) at work, and how a receiver verifies an
// incidentd webhook (Standard Webhooks). The twin of clients/go/example,
// with the same flags and output.
//
// Against a server, with INCIDENTD_URL and INCIDENTD_KEY (a key with
// incidents:write) set, it creates an incident, then pages through the
// incidents with cursors:
//
//   npm ci && npm run build
//   INCIDENTD_URL=http://127.0.0.1:8080 INCIDENTD_KEY=... node dist/example.js --limit 5
//
// Verify a captured delivery (headers.txt: one "Name: value" per line,
// webhook-id, webhook-timestamp and webhook-signature among them):
//
//   INCIDENTD_WEBHOOK_SECRET=whsec_... node dist/example.js --webhook-headers headers.txt --webhook-body body.json
//
// or sign a sample payload with a fresh secret and verify it, a tampered
// copy being refused:
//
//   node dist/example.js --webhook-self-check

import { randomBytes, randomUUID } from "node:crypto";
import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";
import createClient from "openapi-fetch";
import { Webhook } from "standardwebhooks";

import type { components, paths } from "./src/schema.js";

type Problem = components["schemas"]["Problem"];

const usage = `usage: example [flags]  (INCIDENTD_URL and INCIDENTD_KEY select the API tour)
  --title TITLE             title of the incident to create
  --limit N                 page size (1..100) when listing incidents (default 20)
  --webhook-secret SECRET   the webhook endpoint's secret, whsec_... (default $INCIDENTD_WEBHOOK_SECRET)
  --webhook-headers FILE    file of a delivery's headers, one "Name: value" per line
  --webhook-body FILE       file of a delivery's raw body
  --webhook-self-check      sign a sample payload with a fresh secret, verify it, and check that a tampered copy is refused`;

async function main(): Promise<number> {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        title: { type: "string", default: "Example incident from the TypeScript client" },
        limit: { type: "string", default: "20" },
        "webhook-secret": { type: "string" },
        "webhook-headers": { type: "string" },
        "webhook-body": { type: "string" },
        "webhook-self-check": { type: "boolean", default: false },
      },
      strict: true,
      allowPositionals: false,
    }));
  } catch (e) {
    console.error(`${(e as Error).message}\n${usage}`);
    return 2;
  }

  let did = false;
  const url = process.env.INCIDENTD_URL;
  if (url) {
    const key = process.env.INCIDENTD_KEY;
    if (!key) throw new Error("INCIDENTD_URL is set but INCIDENTD_KEY is not");
    const limit = Number(values.limit);
    if (!Number.isInteger(limit)) throw new Error(`--limit ${values.limit}: not an integer`);
    await tour(url, key, values.title, limit);
    did = true;
  }
  if (values["webhook-self-check"]) {
    webhookSelfCheck();
    did = true;
  }
  const headersFile = values["webhook-headers"];
  const bodyFile = values["webhook-body"];
  if (headersFile !== undefined || bodyFile !== undefined) {
    if (headersFile === undefined || bodyFile === undefined) {
      throw new Error("--webhook-headers and --webhook-body go together");
    }
    const secret = values["webhook-secret"] ?? process.env.INCIDENTD_WEBHOOK_SECRET ?? "";
    verifyDelivery(secret, headersFile, bodyFile);
    did = true;
  }
  if (!did) {
    console.error(usage);
    return 2;
  }
  return 0;
}

// tour creates an incident, then lists every incident page by page,
// following pagination.nextCursor.
async function tour(baseUrl: string, key: string, title: string, limit: number): Promise<void> {
  // Any of X-API-Key, API-Key or Authorization: Bearer would do.
  const client = createClient<paths>({ baseUrl, headers: { "X-API-Key": key } });

  // With an Idempotency-Key a retry after a lost answer replays the first
  // answer instead of creating a second incident.
  const created = await client.POST("/v1/incidents", {
    params: { header: { "Idempotency-Key": randomUUID() } },
    body: {
      title,
      severity: "high",
      occurredAt: new Date(Math.floor(Date.now() / 1000) * 1000).toISOString(),
      service: "example-service",
      tags: ["example", "ts-client"],
    },
  });
  if (created.error !== undefined) throw problem("create incident", created.response, created.error);
  const inc = created.data;
  console.log(`created ${inc.id} ${JSON.stringify(inc.title)} (${inc.severity}, ${inc.status})`);

  let cursor: string | undefined;
  let total = 0;
  let pages = 0;
  for (;;) {
    // A cursor goes back with the same filters and sort, and no offset.
    const page = await client.GET("/v1/incidents", { params: { query: { limit, cursor } } });
    if (page.error !== undefined) throw problem("list incidents", page.response, page.error);
    pages++;
    total += page.data.data.length;
    console.log(`page ${pages}: ${page.data.data.length} incidents`);
    for (const i of page.data.data) {
      console.log(`  ${i.id} ${i.severity.padEnd(8)} ${i.status.padEnd(13)} ${i.title}`);
    }
    const p = page.data.pagination;
    if (!p.hasMore) break;
    if (!p.nextCursor) throw new Error("list incidents: hasMore without a nextCursor");
    cursor = p.nextCursor;
  }
  console.log(`listed ${total} incidents in ${pages} pages`);
}

// problem describes a refusal from its problem+json body (every error of
// the API is one), falling back to the status line.
function problem(what: string, res: Response, body: unknown): Error {
  const p = body as Partial<Problem> | undefined;
  if (!p || typeof p !== "object" || !p.title) {
    return new Error(`${what}: HTTP ${res.status} ${res.statusText}: ${String(body).slice(0, 200)}`);
  }
  let msg = `HTTP ${p.status} ${p.title}`;
  if (p.detail) msg += `: ${p.detail}`;
  for (const d of p.details ?? []) msg += `; ${d.field}: ${d.message}`;
  return new Error(`${what}: ${msg} (request ${p.requestId})`);
}

// A sample delivery, shaped like an incident event (the exact payloads are
// the webhooks' own documentation's business; a signature covers any bytes).
const samplePayload =
  '{"type":"incident.created","timestamp":"2026-01-15T14:35:00Z","data":{"id":"inc_1a2b3c4d5e6f","title":"Database connection timeout in production","severity":"high","status":"open"}}';

function webhookSelfCheck(): void {
  const secret = "whsec_" + randomBytes(24).toString("base64");
  const wh = new Webhook(secret);
  const now = new Date();
  const headers = {
    "webhook-id": "msg_example",
    "webhook-timestamp": String(Math.floor(now.getTime() / 1000)),
    "webhook-signature": wh.sign("msg_example", now, samplePayload),
  };
  wh.verify(samplePayload, headers); // throws when it does not verify
  const tampered = samplePayload.replace('"high"', '"low"');
  let refused = false;
  try {
    wh.verify(tampered, headers);
  } catch {
    refused = true;
  }
  if (!refused) throw new Error("webhook self-check: a tampered body verified");
  console.log("webhook self-check: signature valid, tampered body refused");
}

// verifyDelivery checks a delivery as a receiver must, before trusting its
// body: the signature over id, timestamp and the raw body (never a
// re-encoding of it), and a timestamp within five minutes, against replays.
function verifyDelivery(secret: string, headersFile: string, bodyFile: string): void {
  if (!secret) throw new Error("no webhook secret (--webhook-secret or INCIDENTD_WEBHOOK_SECRET)");
  const body = readFileSync(bodyFile);
  const headers = readHeaders(readFileSync(headersFile, "utf8"));
  const id = headers["webhook-id"] ?? "";
  try {
    new Webhook(secret).verify(body, headers);
  } catch (e) {
    throw new Error(`webhook ${id}: signature refused: ${(e as Error).message}`);
  }
  console.log(`webhook ${id}: signature valid`);
}

// readHeaders parses "Name: value" lines (a request line, blank lines and
// "#" comments are skipped), names lower-cased.
function readHeaders(text: string): Record<string, string> {
  const h: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("POST ")) continue;
    const colon = line.indexOf(":");
    if (colon < 0) throw new Error(`not a header line: ${JSON.stringify(line)}`);
    h[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  return h;
}

main().then(
  (code) => process.exit(code),
  (e: unknown) => {
    console.error(`example: ${e instanceof Error ? e.message : String(e)}`);
    process.exit(1);
  },
);
