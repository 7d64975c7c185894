import type { GraphQLClient } from "graphql-request";

import type { Transport } from "../lib/transport.js";

/** What the scenarios share: the signed-in transport and the post they work on. */
export interface Run {
  readonly transport: Transport;
  readonly requests: GraphQLClient;
  readonly credentials: { readonly email: string; readonly password: string };
  /** A title no earlier run used (slugs are unique among live posts). */
  readonly stamp: string;
  post: { id: string; version: number } | null;
}

/** Resolves to the scenario's one-line summary; throws when something is off. */
export type Scenario = (run: Run) => Promise<string>;
