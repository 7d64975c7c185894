// Runs the client's scenarios against an auditql server, one line each:
//
//   AUDITQL_EMAIL=... AUDITQL_PASSWORD=... node dist/main.js [URL]
//
// URL defaults to $AUDITQL_URL, then to `auditql serve`'s http://127.0.0.1:8000/graphql.
// Exits 1 when any scenario fails, 2 when the credentials are missing.
import { explain } from "./lib/errors.js";
import { createRequestClient } from "./lib/requests.js";
import { Transport } from "./lib/transport.js";
import { apolloCache } from "./scenarios/apollo.js";
import { conflict } from "./scenarios/conflict.js";
import { history } from "./scenarios/history.js";
import { listPosts } from "./scenarios/listing.js";
import { liveComments } from "./scenarios/live.js";
import { login } from "./scenarios/login.js";
import type { Run, Scenario } from "./scenarios/run.js";
import { urqlQuery } from "./scenarios/urql.js";

const scenarios: [string, Scenario][] = [
  ["login", login],
  ["posts", listPosts],
  ["conflict", conflict],
  ["history", history],
  ["apollo", apolloCache],
  ["urql", urqlQuery],
  ["live", liveComments],
];

const url = process.argv[2] ?? process.env.AUDITQL_URL ?? "http://127.0.0.1:8000/graphql";
const { AUDITQL_EMAIL: email, AUDITQL_PASSWORD: password } = process.env;
if (!email || !password) {
  console.error("set AUDITQL_EMAIL and AUDITQL_PASSWORD to a user's (auditql create-user)");
  process.exit(2);
}

// AUDITQL_READ_YOUR_WRITES=off drops consistency tokens: against a server reading from
// a lagging replica, reads then miss this client's own writes (tests/client shows it).
const transport = new Transport(url, process.env.AUDITQL_READ_YOUR_WRITES !== "off");
const run: Run = {
  transport,
  requests: createRequestClient(transport),
  credentials: { email, password },
  stamp: new Date().toISOString(),
  post: null,
};
let failed = 0;
for (const [name, scenario] of scenarios) {
  try {
    console.log(`ok   ${name}: ${await scenario(run)}`);
  } catch (error) {
    failed += 1;
    console.log(`FAIL ${name}: ${explain(error)}`);
  }
}
console.log(failed ? `${failed} of ${scenarios.length} scenarios failed` : `all ${scenarios.length} scenarios passed`);
process.exitCode = failed ? 1 : 0;
