/** One request as it left the client, for the scenarios that check how they were sent. */
export interface Sent {
  method: string;
  operationName: string | null;
  /** The document text, when the request carried one. */
  query: string | null;
  /** `extensions.persistedQuery.sha256Hash`, when the request carried one. */
  persistedHash: string | null;
}

/**
 * The one `fetch` that graphql-request, Apollo and urql all use: it adds
 * `Authorization: Bearer <token>` once signed in, and records what it sends.
 */
export class Transport {
  readonly sent: Sent[] = [];
  token: string | null = null;

  constructor(readonly url: string) {}

  readonly fetch = async (input: string | URL | Request, init?: RequestInit): Promise<Response> => {
    const headers = new Headers(init?.headers);
    if (this.token !== null) headers.set("Authorization", `Bearer ${this.token}`);
    const url = new URL(input instanceof Request ? input.url : input);
    this.sent.push(record(init?.method ?? "GET", url, init?.body));
    return fetch(input, { ...init, headers });
  };

  /** The same server, signed out. */
  anonymous(): Transport {
    return new Transport(this.url);
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
