import { check, unexpected } from "../lib/check.js";
import { CommentAdded, CreateComment, CreatePost } from "../lib/documents.js";
import { createLiveClient, resume } from "../lib/live.js";
import type { Run } from "./run.js";

const TIMEOUT_MS = 20_000;

/**
 * 7. A subscription over WebSocket (graphql-ws) that survives a dropped connection: the
 * new comments on a post, from the first; the socket is cut, two comments are written
 * while it is down, and the subscription resumes after its last cursor. Every comment
 * arrives once, in order.
 */
export async function liveComments(run: Run): Promise<string> {
  const { createPost } = await run.requests.request(CreatePost, { input: { title: `Live ${run.stamp}` } });
  if (createPost?.__typename !== "PostSuccess") unexpected("createPost", createPost);
  const postId = createPost.post.id;
  const written: string[] = [];
  const write = async (): Promise<void> => {
    const input = { postId, body: `Comment ${written.length + 1}` };
    const { createComment } = await run.requests.request(CreateComment, { input });
    if (createComment?.__typename !== "CommentSuccess") unexpected("createComment", createComment);
    written.push(createComment.comment.id);
  };

  const live = createLiveClient(run.transport);
  let connections = 0;
  live.on("connected", () => {
    connections += 1;
  });
  const signal = AbortSignal.timeout(TIMEOUT_MS);
  const comments = resume(live, CommentAdded, { postId, after: "0" }, (data) => data.commentAdded.cursor, {
    signal,
    // While the connection is down, before it subscribes again, the post gets two comments.
    retryWait: async () => {
      await write();
      await write();
    },
  });
  const seen: { id: string; cursor: string }[] = [];
  await write(); // before subscribing: "0" replays it
  try {
    for await (const { commentAdded } of comments) {
      seen.push({ id: commentAdded.comment.id, cursor: commentAdded.cursor });
      if (seen.length === 1) await write(); // arrives live
      if (seen.length === 2) live.terminate(); // the socket drops: comments 3 and 4 come meanwhile
      if (seen.length === 4) await write(); // live again
      if (seen.length === 5) break;
    }
  } finally {
    await live.dispose();
  }
  const ids = seen.map((comment) => written.indexOf(comment.id) + 1);
  check(!signal.aborted, `after ${TIMEOUT_MS / 1000} s, ${seen.length} of ${written.length} comments arrived: ${ids.join(", ")}`);
  check(ids.join() === "1,2,3,4,5", `comments 1 to 5 were written; arrived: ${ids.join(", ")}`);
  const cursors = seen.map((comment) => BigInt(comment.cursor));
  check(cursors.every((cursor, i) => i === 0 || cursor > (cursors[i - 1] ?? cursor)), `cursors ${cursors.join(", ")} do not increase`);
  check(connections === 2, `${connections} connections, 2 expected (one dropped, one resumed)`);
  return `${seen.length} comments over ${connections} connections, each once and in order; 2 written while it was down arrived on resuming after cursor ${seen[1]?.cursor}`;
}
