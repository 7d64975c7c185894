import { CombinedGraphQLErrors, ServerError } from "@apollo/client/errors";
import { ClientError } from "graphql-request";

/** One line saying what the server answered, whichever client failed. */
export function explain(error: unknown): string {
  if (error instanceof ClientError) {
    const { status, errors } = error.response;
    return `HTTP ${status}: ${errors ? formatErrors(errors) : JSON.stringify(error.response)}`;
  }
  if (CombinedGraphQLErrors.is(error)) return formatErrors(error.errors);
  if (ServerError.is(error)) return `HTTP ${error.statusCode}: ${error.bodyText}`;
  return error instanceof Error ? error.message : String(error);
}

interface FormattedError {
  readonly message: string;
  readonly extensions?: { readonly [key: string]: unknown } | undefined;
}

export function formatErrors(errors: readonly FormattedError[]): string {
  return errors.map((error) => `${error.message} [${String(error.extensions?.code ?? "no code")}]`).join("; ");
}
