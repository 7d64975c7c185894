import { Client, cacheExchange, fetchExchange } from "@urql/core";

import type { Transport } from "./transport.js";

/** urql's defaults otherwise: queries go as GET while their URL is short enough. */
export function createUrqlClient(transport: Transport): Client {
  return new Client({
    url: transport.url,
    exchanges: [cacheExchange, fetchExchange],
    fetch: transport.fetch,
  });
}
