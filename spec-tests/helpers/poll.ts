/** Waiting for state that no event announces (counters, files written by the native side). */
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Calls `check` every `everyMs` until it returns something other than `undefined`, `null` or
 * `false`, and returns that; rejects (naming `what` and the last value seen) after `ms`.
 */
export async function until<T>(
  ms: number,
  check: () => T | Promise<T>,
  what: string,
  everyMs = 10,
): Promise<Exclude<T, undefined | null | false>> {
  const deadline = performance.now() + ms;
  let last: T;
  for (;;) {
    last = await check();
    if (last !== undefined && last !== null && last !== false) return last as Exclude<T, undefined | null | false>;
    if (performance.now() >= deadline) throw new Error(`${what}: not true within ${ms} ms (last: ${String(last)})`);
    await sleep(everyMs);
  }
}

/** Whether `promise` is still pending after the event loop has turned a few times (and `ms`). */
export async function isPending(promise: Promise<unknown>, ms = 0): Promise<boolean> {
  const marker = Symbol('pending');
  const settled = promise.then(
    () => 'settled',
    () => 'settled',
  );
  return (await Promise.race([settled, sleep(ms, marker)])) === marker;
}
