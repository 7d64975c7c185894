import { check } from "../lib/check.js";
import { ListPosts } from "../lib/documents.js";
import { createUrqlClient } from "../lib/urql.js";
import type { Run } from "./run.js";

/**
 * 6. urql's core client with its default exchanges: a query goes as GET, with its full
 * text (a production server runs it only because the text is a trusted document's).
 */
export async function urqlQuery(run: Run): Promise<string> {
  const urql = createUrqlClient(run.transport);
  const first = run.transport.sent.length;
  const result = await urql.query(ListPosts, { first: 5 }).toPromise();
  check(!result.error, `${result.error?.message} (HTTP ${String(result.error?.response?.status)})`);
  const request = run.transport.sent[first];
  check(request?.method === "GET" && request.query !== null, `urql sent ${JSON.stringify(request)}`);
  check(result.data, "urql: no data");
  const titles = result.data.posts.edges.map((edge) => edge.node.title);
  return `GET ${request.operationName}: ${result.data.posts.totalCount} visible, first "${titles[0]}"`;
}
