/** Assertions shared by the option and attribute validation tests. */
import assert from 'node:assert/strict';

export type ErrorClass = typeof TypeError | typeof RangeError;

/**
 * `fn` throws one of `Class` whose message names `name`: a pattern, or a string that must appear as
 * a whole name (not followed by more letters, so that `maxIdle` does not match `maxIdleTimeout`).
 */
export function assertThrowsNaming(fn: () => unknown, Class: ErrorClass | ErrorClass[], name: string | RegExp): void {
  const classes = Array.isArray(Class) ? Class : [Class];
  const pattern =
    typeof name === 'string' ? new RegExp(`${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}(?![A-Za-z])`) : name;
  assert.throws(
    fn,
    (e: unknown) => {
      assert.ok(
        classes.some((C) => e instanceof C),
        `expected ${classes.map((C) => C.name).join(' or ')}, got ${String(e)}`,
      );
      assert.match((e as Error).message, pattern);
      return true;
    },
    String(name),
  );
}
