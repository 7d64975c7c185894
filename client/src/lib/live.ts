import type { TypedDocumentNode } from "@graphql-typed-document-node/core";
import { print } from "graphql";
import { type Client, createClient } from "graphql-ws";
import WebSocket from "ws";

import { formatErrors } from "./errors.js";
import type { Transport } from "./transport.js";

/**
 * A graphql-ws client (protocol graphql-transport-ws) for the server of `transport`, on
 * the same path with ws: or wss:. Each connection signs in with the transport's token of
 * the moment, `{"Authorization": "Bearer <token>"}` in `connection_init`; none: anonymous.
 */
export function createLiveClient(transport: Transport): Client {
  const url = new URL(transport.url);
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return createClient({
    url: url.href,
    // Node 20 has no global WebSocket (22 has; a browser needs no option).
    webSocketImpl: WebSocket,
    connectionParams: () => (transport.token === null ? {} : { Authorization: `Bearer ${transport.token}` }),
    // graphql-ws would subscribe again with the first `after`; resume() does, from the last cursor.
    retryAttempts: 0,
  });
}

export interface Resuming {
  /** Ends the subscription (the loop over it ends as if the server had completed it). */
  readonly signal?: AbortSignal;
  /**
   * Waits before subscribing again after the `retries`-th consecutive drop (from 0); by
   * default a randomised exponential backoff: 1 s, 2 s, 4 s... and up to 1 s more.
   */
  readonly retryWait?: (retries: number) => Promise<void>;
  /** Consecutive drops without a connection in between after which it gives up. */
  readonly retryAttempts?: number;
}

/**
 * Subscribes with `variables` and yields each event's data. When the connection drops
 * (the server restarting, 1012; this subscriber too slow, 1013; the network), it
 * subscribes again with `after` set to the last event's cursor (`cursorOf`): the server
 * replays what came meanwhile, so no event is missed and none arrives twice. Anything
 * else ends it with an error: a refused token (4403), a GraphQL error.
 */
export async function* resume<TData, TVariables extends { after?: string | null | undefined }>(
  client: Client,
  document: TypedDocumentNode<TData, TVariables>,
  variables: TVariables,
  cursorOf: (data: TData) => string,
  { signal, retryWait = backoff, retryAttempts = 5 }: Resuming = {},
): AsyncGenerator<TData, void, undefined> {
  const query = print(document);
  let after = variables.after;
  let retries = 0;
  const connected = client.on("connected", () => {
    retries = 0;
  });
  try {
    while (!signal?.aborted) {
      const results = client.iterate<TData>({ query, variables: { ...variables, after } });
      const abort = () => void results.return?.();
      signal?.addEventListener("abort", abort);
      try {
        for await (const { data, errors } of results) {
          if (errors?.length || !data) throw new Error(errors ? formatErrors(errors) : "an event without data");
          after = cursorOf(data);
          yield data;
        }
        return; // completed: by the server, or aborted
      } catch (problem) {
        if (!resumable(problem) || retries >= retryAttempts) throw failure(problem);
      } finally {
        signal?.removeEventListener("abort", abort);
        await results.return?.(); // graphql-ws's hold on the dropped socket
      }
      await retryWait(retries);
      retries += 1;
    }
  } finally {
    connected();
  }
}

// Close codes after which subscribing again can succeed: the connection lost (1001,
// 1005, 1006), the server restarting (1012) or shedding a slow subscriber (1013), a
// proxy's upstream failing (1014), graphql-ws's `terminate()` (4499).
// Ref: https://www.iana.org/assignments/websocket/websocket.xhtml#close-code-number
const RESUMABLE = new Set([1001, 1005, 1006, 1012, 1013, 1014, 4499]);

function resumable(problem: unknown): boolean {
  if (typeof problem !== "object" || problem === null) return false;
  if ("code" in problem) return typeof problem.code === "number" && RESUMABLE.has(problem.code);
  // The socket's "error" event: it could not connect (say, while the server restarts).
  // graphql-ws's own failures are Errors, and an `error` message is a list of GraphQL errors.
  return !(problem instanceof Error) && "type" in problem && problem.type === "error";
}

function failure(problem: unknown): Error {
  if (problem instanceof Error) return problem;
  if (Array.isArray(problem)) return new Error(formatErrors(problem));
  const { code, reason } = problem as { code?: unknown; reason?: unknown };
  if (typeof code === "number") return new Error(`the connection closed: ${code} ${String(reason)}`);
  return new Error(`the connection failed: ${String((problem as { message?: unknown }).message ?? problem)}`);
}

async function backoff(retries: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, 1000 * 2 ** retries + Math.random() * 1000));
}
