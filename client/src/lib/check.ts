/** A scenario's expectation that did not hold; the runner prints its message. */
export class ScenarioFailure extends Error {}

export function check(condition: unknown, message: string): asserts condition {
  if (!condition) throw new ScenarioFailure(message);
}

/** Fails with what arrived instead: an `Error` result's code and message, or the value. */
export function unexpected(what: string, value: unknown): never {
  throw new ScenarioFailure(`${what}: unexpected ${describe(value)}`);
}

export function describe(value: unknown): string {
  if (value && typeof value === "object" && "__typename" in value) {
    const { __typename, code, message } = value as Record<string, unknown>;
    if (typeof code === "string") return `${String(__typename)} ${code}: ${String(message)}`;
  }
  return JSON.stringify(value) ?? String(value);
}

/** RFC 3339 in UTC with `Z`, as auditql's `DateTime` results are. */
export function isUtcDateTime(value: string): boolean {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/.test(value) && !Number.isNaN(Date.parse(value));
}
