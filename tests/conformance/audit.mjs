// The graphql-http audit suite (GraphQL over HTTP conformance) against a live server.
//
// Usage: node audit.mjs URL   (URL: the GraphQL endpoint, e.g. http://127.0.0.1:8080/graphql)
// Prints one JSON object per audit, one a line: {id, name, status, reason}; status is `ok`, or
// for a failure `error` (a MUST), `warn` (a SHOULD) or `notice` (a MAY). Exits 1 when a MUST
// fails; tests/api/conformance.rs also compares the failing SHOULDs with README.md's list.
import { auditServer } from 'graphql-http'; // its main module re-exports lib/audits

const url = process.argv[2];
if (!url) {
  console.error('usage: node audit.mjs URL');
  process.exit(2);
}
const results = await auditServer({ url });
for (const { id, name, status, reason } of results) {
  console.log(JSON.stringify({ id, name, status, reason: reason ?? null }));
}
process.exit(results.some((r) => r.status === 'error') ? 1 : 0);
