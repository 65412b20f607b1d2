/** Helpers for the datagram suites: self-checking payloads, polling for counters, drop events. */
import diagnostics from 'node:diagnostics_channel';
import type { QuicTransport, QuicTransportStats } from '../../lib/index.js';
import { nextIncoming, readAll, within, writeText } from './pair.js';

/**
 * Datagram `index` of a run whose sizes cycle through 1..`max`: the size is `1 + index % max`,
 * byte 0 is the round (`index / max`), the rest a pattern derived from the index. Size and
 * round name the index, so even a 1-byte datagram says which one it is.
 */
export function sized(index: number, max: number): Uint8Array {
  const round = Math.floor(index / max);
  if (round > 255) throw new RangeError(`index ${index} is past 256 rounds of ${max} sizes`);
  const d = new Uint8Array(1 + (index % max));
  d[0] = round;
  for (let k = 1; k < d.length; k++) d[k] = patternByte(index, k);
  return d;
}

/** The index of a datagram made by `sized(index, max)`, or `undefined` if it is not one. */
export function indexOfSized(d: Uint8Array, max: number): number | undefined {
  if (d.length < 1 || d.length > max) return undefined;
  const index = d[0] * max + d.length - 1;
  for (let k = 1; k < d.length; k++) if (d[k] !== patternByte(index, k)) return undefined;
  return index;
}

function patternByte(index: number, k: number): number {
  return (index * 131 + k * 29 + (k >> 8) * 7 + 17) & 0xff;
}

/** A 5-byte datagram: a tag byte and a 32-bit index. */
export function tagged(tag: number, index: number): Uint8Array {
  const d = new Uint8Array(5);
  d[0] = tag;
  new DataView(d.buffer).setUint32(1, index);
  return d;
}

/** The tag and index of a `tagged()` datagram. */
export function untag(d: Uint8Array): { tag: number; index: number } {
  if (d.length !== 5) throw new Error(`expected a 5-byte tagged datagram, got ${d.length} bytes`);
  return { tag: d[0], index: new DataView(d.buffer, d.byteOffset, d.byteLength).getUint32(1) };
}

/**
 * Polls `check` every 10 ms until it returns true; rejects after `ms` with `what` and the last
 * `describe()`. For counters, which have no event to await.
 */
export async function waitUntil(
  ms: number,
  check: () => boolean | Promise<boolean>,
  what: string,
  describe: () => unknown = () => '',
): Promise<void> {
  const deadline = performance.now() + ms;
  for (;;) {
    if (await check()) return;
    if (performance.now() > deadline) {
      const detail = describe();
      throw new Error(`${what}: not within ${ms} ms ${typeof detail === 'string' ? detail : JSON.stringify(detail)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

/** Blocks the event loop for `ms`: nothing (no flush, no packet) can happen meanwhile. */
export function spin(ms: number): void {
  const until = performance.now() + ms;
  while (performance.now() < until);
}

/** Both sides' stats at once. */
export async function statsOf(a: QuicTransport, b: QuicTransport): Promise<[QuicTransportStats, QuicTransportStats]> {
  return Promise.all([a.getStats(), b.getStats()]);
}

/** A `quichex:datagram:drop` payload. */
export interface DropEvent {
  session: object;
  direction: 'incoming' | 'outgoing';
  reason: 'queue-full' | 'expired' | 'too-large';
  count: number;
}

/** Records `quichex:datagram:drop` events until `close()`. */
export class DropRecorder {
  readonly events: DropEvent[] = [];
  #waiters: { match: (e: DropEvent) => boolean; resolve: (e: DropEvent) => void }[] = [];
  readonly #onMessage = (message: unknown): void => {
    const e = message as DropEvent;
    this.events.push(e);
    for (const w of this.#waiters.filter((w) => w.match(e))) {
      this.#waiters.splice(this.#waiters.indexOf(w), 1);
      w.resolve(e);
    }
  };

  constructor() {
    diagnostics.subscribe('quichex:datagram:drop', this.#onMessage);
  }

  /** The events of `session` (and `reason`, if given). */
  of(session: object, reason?: DropEvent['reason']): DropEvent[] {
    return this.events.filter((e) => e.session === session && (reason === undefined || e.reason === reason));
  }

  /** Total `count` of the events of `session` for `reason`. */
  total(session: object, reason: DropEvent['reason']): number {
    return this.of(session, reason).reduce((sum, e) => sum + e.count, 0);
  }

  /** The first event (recorded or to come) that `match` accepts. */
  next(match: (e: DropEvent) => boolean): Promise<DropEvent> {
    const seen = this.events.find(match);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve) => this.#waiters.push({ match, resolve }));
  }

  close(): void {
    diagnostics.unsubscribe('quichex:datagram:drop', this.#onMessage);
  }
}

/**
 * Returns once the client is past the handshake for good (a stream round trip: by then it has
 * HANDSHAKE_DONE and sends no more Handshake packets). A client closed before that point may
 * never get its close out (see session/close.test.ts) and keep its socket, and so the test
 * process, alive until the idle timeout: tests call this before they close.
 */
export async function pastHandshake(client: QuicTransport, session: QuicTransport): Promise<void> {
  const writable = await client.createUnidirectionalStream();
  await writeText(writable, 'past the handshake');
  const readable = await nextIncoming(session.incomingUnidirectionalStreams);
  const text = (await within(5000, readAll(readable), 'round trip')).toString();
  if (text !== 'past the handshake') throw new Error(`round trip got ${JSON.stringify(text)}`);
}
