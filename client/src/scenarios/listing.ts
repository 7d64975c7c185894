import { check, isUtcDateTime } from "../lib/check.js";
import { ListPosts } from "../lib/documents.js";
import type { Run } from "./run.js";

/** 2. A typed list query through graphql-request: posts with their authors and tags. */
export async function listPosts(run: Run): Promise<string> {
  const { posts } = await run.requests.request(ListPosts, { first: 20 });
  const shown = posts.edges.map((edge) => edge.node);
  const example = shown.find((post) => post.createdBy !== null && post.tags.length > 0);
  check(example, `none of the ${posts.totalCount} posts has an author and tags (try auditql seed-demo)`);
  const late = shown.find((post) => !isUtcDateTime(post.createdAt));
  check(!late, `createdAt ${JSON.stringify(late?.createdAt)} is not RFC 3339 UTC with Z`);
  const tags = example.tags.map((tag) => tag.name).join(", ");
  return `${posts.totalCount} visible, e.g. "${example.title}" by ${example.createdBy?.username} [${tags}]`;
}
