import { ApolloClient, ApolloLink, HttpLink, InMemoryCache } from "@apollo/client";
import { PersistedQueryLink } from "@apollo/client/link/persisted-queries";
import type { ASTNode, DocumentNode } from "graphql";

// Written by `auditql export-schema` beside schema.graphql: each interface and union
// with its object types, so the cache can match `... on Error` and `... on Audited`.
// Ref: https://www.apollographql.com/docs/react/data/fragments#defining-possibletypes-manually
import possibleTypes from "../../../possible-types.json" with { type: "json" };
import manifest from "../gql/persisted-documents.json" with { type: "json" };
import type { Transport } from "./transport.js";

const PREFIX = "sha256:";
const documents: Record<string, string> = manifest;

/**
 * The SHA-256 that codegen embedded in the document (`document.__meta__.hash`, which
 * the manifest keys as `sha256:<hex>`), as Apollo's persisted queries send it: hex.
 */
export function persistedHash(document: DocumentNode): string {
  const hash = (document as { __meta__?: { hash?: unknown } }).__meta__?.hash;
  if (typeof hash !== "string" || !hash.startsWith(PREFIX) || !(hash in documents)) {
    throw new Error("a document without a persisted hash: run `npm run codegen` again");
  }
  return hash.slice(PREFIX.length);
}

/**
 * Sends the manifest's text when the server asks for a document it does not know yet:
 * the SHA-256 of exactly that text is the hash sent with it.
 */
function print(node: ASTNode, originalPrint: (node: ASTNode) => string): string {
  const hash = (node as { __meta__?: { hash?: unknown } }).__meta__?.hash;
  return (typeof hash === "string" ? documents[hash] : undefined) ?? originalPrint(node);
}

export function createApolloClient(transport: Transport): ApolloClient {
  const link = ApolloLink.from([
    // Each operation is sent as its hash first (GET for queries); only if the server
    // answers PERSISTED_QUERY_NOT_FOUND is it sent again with its text.
    new PersistedQueryLink({ generateHash: persistedHash, useGETForHashedQueries: true }),
    new HttpLink({ uri: transport.url, fetch: transport.fetch, print }),
  ]);
  return new ApolloClient({ link, cache: new InMemoryCache({ possibleTypes }) });
}
