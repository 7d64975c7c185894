import { print } from "graphql";

import type { PostHistoryQuery, PostHistoryQueryVariables } from "../gql/graphql.js";
import { check, isUtcDateTime, unexpected } from "../lib/check.js";
import { PostHistory, PublishPost } from "../lib/documents.js";
import { createRequestClient } from "../lib/requests.js";
import type { Run } from "./run.js";

/**
 * 4. The post's audit history: its author reads every change; once it is published,
 * anyone reads the post, but its `history` (nullable) is null for them: the refusal is
 * one error on that field, and the rest of the post arrives.
 */
export async function history(run: Run): Promise<string> {
  check(run.post, "no post to read (the conflict scenario made none)");
  const input = { id: run.post.id, expectedVersion: run.post.version };
  const { publishPost } = await run.requests.request(PublishPost, { input });
  if (publishPost?.__typename !== "PostSuccess") unexpected("publishPost", publishPost);

  const { post } = await run.requests.request(PostHistory, { id: run.post.id, first: 10 });
  check(post?.history, `the author's post or its history is null: ${JSON.stringify(post)}`);
  const entries = post.history.edges.map((edge) => edge.node);
  check(entries.some((entry) => entry.action === "CREATE"), "no CREATE entry");
  const late = entries.find((entry) => !isUtcDateTime(entry.at));
  check(!late, `AuditEntry.at ${JSON.stringify(late?.at)} is not RFC 3339 UTC with Z`);
  const fields = [...new Set(entries.flatMap((entry) => entry.changes.map((change) => change.field)))];
  // AuditChange.field names the GraphQL field (camelCase), not the column.
  check(fields.includes("publishedAt"), `changed fields are ${fields.join(", ")}: no publishedAt`);

  const anonymous = createRequestClient(run.transport.anonymous(), "all");
  const variables = { id: run.post.id, first: 10 };
  const seen = await anonymous.rawRequest<PostHistoryQuery, PostHistoryQueryVariables>(print(PostHistory), variables);
  check(seen.data.post?.title === post.title, `a published post is hidden from a signed-out reader`);
  check(seen.data.post.history === null, "a signed-out reader sees the history");
  const refusals = (seen.errors ?? []).map((error) => `${error.path?.join(".")} ${String(error.extensions?.code)}`);
  check(refusals.length === 1 && refusals[0]?.startsWith("post.history "), `errors: ${refusals.join("; ")}`);
  return `${post.history.totalCount} entries (${entries.map((entry) => entry.action).join(", ")}), fields ${fields.join(", ")}; signed out: the post, history null (${refusals[0]})`;
}
