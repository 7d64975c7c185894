import { check, unexpected } from "../lib/check.js";
import { Login, Viewer } from "../lib/documents.js";
import type { Run } from "./run.js";

/** 1. Password sign-in; from then on every request carries `Authorization: Bearer`. */
export async function login(run: Run): Promise<string> {
  const { login } = await run.requests.request(Login, { input: run.credentials });
  if (login?.__typename !== "TokenSuccess") unexpected("login", login);
  run.transport.token = login.token;
  const { viewer } = await run.requests.request(Viewer);
  check(viewer?.id === login.user.id, `viewer with the token is ${JSON.stringify(viewer)}`);
  return `signed in as ${login.user.username}; the bearer token identifies the viewer`;
}
