import { check, isUtcDateTime, unexpected } from "../lib/check.js";
import { CreatePost, UpdatePost } from "../lib/documents.js";
import type { Run } from "./run.js";

/** 3. Optimistic concurrency: an update with a stale `expectedVersion` is a ConflictError. */
export async function conflict(run: Run): Promise<string> {
  const input = { title: `Typed client ${run.stamp}`, body: "Written by client/." };
  const { createPost } = await run.requests.request(CreatePost, { input });
  if (createPost?.__typename !== "PostSuccess") unexpected("createPost", createPost);
  const { id, version, createdAt } = createPost.post;
  check(isUtcDateTime(createdAt), `createdAt ${createdAt} is not RFC 3339 UTC with Z`);

  const edit = { id, title: `${input.title}, edited`, expectedVersion: version };
  const { updatePost } = await run.requests.request(UpdatePost, { input: edit });
  if (updatePost?.__typename !== "PostSuccess") unexpected("updatePost", updatePost);
  check(updatePost.post.version === version + 1, `version ${updatePost.post.version} after one update`);

  const lost = { ...edit, title: `${input.title}, lost` };
  const { updatePost: stale } = await run.requests.request(UpdatePost, { input: lost });
  if (stale?.__typename !== "ConflictError") unexpected("updatePost with a stale expectedVersion", stale);
  check(stale.code === "CONFLICT", `ConflictError.code is ${stale.code}`);
  check(stale.message !== "", "ConflictError.message is empty");
  check(stale.currentVersion === version + 1, `currentVersion is ${stale.currentVersion}`);

  run.post = { id, version: updatePost.post.version };
  return `post v${version} -> v${version + 1}; stale expectedVersion -> ${stale.code} "${stale.message}" (currentVersion ${stale.currentVersion})`;
}
