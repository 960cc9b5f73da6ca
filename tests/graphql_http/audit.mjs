// Runs graphql-http's GraphQL-over-HTTP audits against a server and prints the results as
// JSON (one entry per audit that is not "ok"), exiting 1 when any audit errors.
// Usage: node audit.mjs URL  (SHOPFRONT_STOREFRONT_KEY in the environment)
import { auditServer } from "graphql-http";

const url = process.argv[2];
const key = process.env.SHOPFRONT_STOREFRONT_KEY;
if (!url || !key) {
  console.error("usage: SHOPFRONT_STOREFRONT_KEY=... node audit.mjs URL");
  process.exit(2);
}

// Every audit request carries the key, as a storefront's requests do.
function fetchWithKey(input, init = {}) {
  const headers = new Headers(init.headers);
  headers.set("authorization", `Bearer ${key}`);
  return fetch(input, { ...init, headers });
}

const results = await auditServer({ url, fetchFn: fetchWithKey });
const notOk = [];
for (const result of results) {
  if (result.status === "ok") continue;
  notOk.push({ id: result.id, status: result.status, name: result.name, reason: result.reason });
}
console.log(JSON.stringify({ total: results.length, notOk }, null, 2));
process.exit(notOk.some((r) => r.status === "error") ? 1 : 0);
