/** One request as it left the client, for the scenarios that check how they were sent. */
export interface Sent {
  method: string;
  operationName: string | null;
  /** The document text, when the request carried one. */
  query: string | null;
  /** `extensions.persistedQuery.sha256Hash`, when the request carried one. */
  persistedHash: string | null;
}

const CONSISTENCY = "X-Consistency-Token";

/**
 * The one `fetch` that graphql-request, Apollo and urql all use: it adds
 * `Authorization: Bearer <token>` once signed in, passes consistency tokens along,
 * and records what it sends.
 *
 * Read-your-writes: a response to a request that wrote carries `X-Consistency-Token`
 * (the server's place in its write-ahead log after the commit). Sent back with every
 * later request, it makes a server that reads from replicas read only from one that
 * has the write, so this client never sees its own write missing.
 */
export class Transport {
  readonly sent: Sent[] = [];
  token: string | null = null;
  /** The token of the last write answered; null before any. */
  consistency: string | null = null;

  constructor(
    readonly url: string,
    /** Whether to pass consistency tokens along (off only to show what they prevent). */
    readonly readYourWrites = true,
  ) {}

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    if (this.token !== null) headers.set("Authorization", `Bearer ${this.token}`);
    if (this.consistency !== null) headers.set(CONSISTENCY, this.consistency);
    const url = new URL(input instanceof Request ? input.url : input);
    this.sent.push(record(init?.method ?? "GET", url, init?.body));
    const response = await fetch(input, { ...init, headers });
    const written = response.headers.get(CONSISTENCY);
    if (written !== null && this.readYourWrites) this.consistency = written;
    return response;
  };

  /** The same server, signed out (and as far as the writes it has seen). */
  anonymous(): Transport {
    const other = new Transport(this.url, this.readYourWrites);
    other.consistency = this.consistency;
    return other;
  }
}

function record(method: string, url: URL, body: unknown): Sent {
  const fields: Record<string, unknown> =
    typeof body === "string" ? (JSON.parse(body) as Record<string, unknown>) : Object.fromEntries(url.searchParams);
  const extensions = parsed(fields.extensions) as { persistedQuery?: { sha256Hash?: unknown } } | null;
  const hash = extensions?.persistedQuery?.sha256Hash;
  return {
    method: method.toUpperCase(),
    operationName: typeof fields.operationName === "string" ? fields.operationName : null,
    query: typeof fields.query === "string" ? fields.query : null,
    persistedHash: typeof hash === "string" ? hash : null,
  };
}

/** GET requests carry `extensions` as JSON text in the query string. */
function parsed(value: unknown): unknown {
  return typeof value === "string" ? JSON.parse(value) : (value ?? null);
}
