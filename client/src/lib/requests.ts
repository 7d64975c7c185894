import { GraphQLClient } from "graphql-request";

import type { Transport } from "./transport.js";

/**
 * graphql-request: typed documents over POST, through the transport (signed in or not).
 * By default a response with any error throws; `errorPolicy: "all"` keeps the data.
 */
export function createRequestClient(transport: Transport, errorPolicy: "none" | "all" = "none"): GraphQLClient {
  return new GraphQLClient(transport.url, { fetch: transport.fetch, errorPolicy });
}
