import type { DocumentNode } from "graphql";

import { createApolloClient, persistedHash } from "../lib/apollo.js";
import { check, unexpected } from "../lib/check.js";
import { CreatePost, NodeVersion, Post, UpdatePost } from "../lib/documents.js";
import type { Sent } from "../lib/transport.js";
import type { Run } from "./run.js";

/**
 * 5. Apollo Client's normalized cache with auditql's possibleTypes, over persisted
 * queries: a mutation's result updates the cached post, `... on Error` and
 * `... on Audited` fields survive the cache, and every operation goes out as its hash first.
 */
export async function apolloCache(run: Run): Promise<string> {
  const apollo = createApolloClient(run.transport);
  const first = run.transport.sent.length;
  try {
    const title = `Cached ${run.stamp}`;
    const created = (await apollo.mutate({ mutation: CreatePost, variables: { input: { title } } })).data?.createPost;
    if (created?.__typename !== "PostSuccess") unexpected("createPost", created);
    const { id, version } = created.post;
    const read = (await apollo.query({ query: Post, variables: { id } })).data?.post;
    check(read?.version === version, `post(id:) answered ${JSON.stringify(read)}`);

    const edit = { id, title: `${title}, renamed`, expectedVersion: version };
    const updated = (await apollo.mutate({ mutation: UpdatePost, variables: { input: edit } })).data?.updatePost;
    if (updated?.__typename !== "PostSuccess") unexpected("updatePost", updated);
    const sent = run.transport.sent.length;
    const cached = apollo.readQuery({ query: Post, variables: { id } })?.post;
    check(run.transport.sent.length === sent, "reading the cache sent a request");
    check(cached?.title === edit.title, `the cache holds title ${JSON.stringify(cached?.title)}`);
    check(cached.version === version + 1, `the cache holds version ${cached.version}`);

    const stale = (await apollo.mutate({ mutation: UpdatePost, variables: { input: edit } })).data?.updatePost;
    if (stale?.__typename !== "ConflictError") unexpected("updatePost with a stale expectedVersion", stale);
    check(stale.code === "CONFLICT" && stale.message !== "", `ConflictError lost code or message: ${JSON.stringify(stale)}`);

    const node = (await apollo.query({ query: NodeVersion, variables: { id } })).data?.node;
    if (node?.__typename !== "Post") unexpected("node(id:)", node);
    check(node.version === version + 1, `node(id:) ... on Audited has version ${node.version}`);

    // Registered by now: the same query again goes out by its hash alone, and is answered.
    await apollo.query({ query: Post, variables: { id }, fetchPolicy: "network-only" });
    const persisted = checkPersisted(run.transport.sent.slice(first), [CreatePost, Post, UpdatePost, NodeVersion]);
    return `cache read: "${cached.title}" v${cached.version}; stale update -> ${stale.code} "${stale.message}"; node(id:) ... on Audited version ${node.version}; ${persisted}`;
  } finally {
    apollo.stop();
  }
}

/** Every operation's first request carried only its manifest hash; the text went at most once. */
function checkPersisted(sent: Sent[], documents: DocumentNode[]): string {
  const hashes = new Map(documents.map((document) => [operationName(document), persistedHash(document)]));
  for (const [name, hash] of hashes) {
    const request = sent.find((request) => request.operationName === name);
    check(request, `Apollo sent no ${name}`);
    check(request.query === null && request.persistedHash === hash, `${name} went first as ${JSON.stringify(request)}`);
  }
  const withText = sent.filter((request) => request.query !== null);
  check(new Set(withText.map((request) => request.operationName)).size === withText.length, "a document's text went twice");
  const last = sent.at(-1);
  check(last?.query === null && last.method === "GET", `the repeated query went as ${JSON.stringify(last)}`);
  const gets = sent.filter((request) => request.method === "GET").length;
  return `persisted queries: ${sent.length} requests, ${gets} hash-only GET, ${withText.length} sent their text`;
}

function operationName(document: DocumentNode): string {
  const operation = document.definitions.find((definition) => definition.kind === "OperationDefinition");
  check(operation?.name, "an operation without a name");
  return operation.name.value;
}
