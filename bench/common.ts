/** What the benchmark's processes share: a clock, the IPC messages, and statistics. */

/**
 * Milliseconds on the monotonic clock (`CLOCK_MONOTONIC` on Linux), which every process on the
 * host shares: a start stamped in one process and an end stamped in another can be subtracted.
 */
export function now(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}

/** Size of one raw datagram in the baseline, the same as quichex's default maxUdpPayloadSize. */
export const DATAGRAM_SIZE = 1350;
/** Size of one echo message. */
export const ECHO_SIZE = 100;

/** Messages from workers to bench/run.ts. */
export type WorkerMessage =
  | { type: 'ready'; port: number; hash?: string }
  /** A sender finished: when its first byte went out, and what it sent. */
  | { type: 'sent'; start: number; bytes: number; packets?: number }
  /** A receiver's count: bytes, datagrams (or chunks read, for quichex), and when the last arrived. */
  | { type: 'received'; bytes: number; packets: number; last: number }
  /** Round-trip times in milliseconds, after warm-up. */
  | { type: 'samples'; samples: number[] };

/** Messages from bench/run.ts to workers. */
export type ControlMessage = { type: 'report' } | { type: 'stop' };

/** Sends `message` to bench/run.ts. */
export function report(message: WorkerMessage): void {
  process.send?.(message);
}

/**
 * Calls `stop` when bench/run.ts says so or goes away. `stop` must release every handle (and so
 * end the process); `onReport` answers a request for figures. Returns whether stopping has begun,
 * so that a worker can tell the errors it caused by stopping from real failures.
 */
export function onControl(stop: () => void | Promise<void>, onReport?: () => void): () => boolean {
  let stopping = false;
  const shutdown = async () => {
    if (stopping) return;
    stopping = true;
    await stop();
    if (process.connected) process.disconnect();
  };
  process.on('message', (m: ControlMessage) => {
    if (m.type === 'report') onReport?.();
    else if (m.type === 'stop') void shutdown();
  });
  process.once('disconnect', () => void shutdown());
  return () => stopping;
}

/** Parses `--name value` pairs of a worker's argv into numbers and strings. */
export function workerArgs(argv = process.argv.slice(2)): Record<string, string> {
  const out: Record<string, string> = {};
  for (let i = 0; i + 1 < argv.length; i += 2) out[argv[i].replace(/^--/, '')] = argv[i + 1];
  return out;
}

/** The `p`-th percentile (0–100) of `values`, nearest rank. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * sorted.length);
  return sorted[Math.min(sorted.length, Math.max(rank, 1)) - 1];
}

/** The median of `values` (NaN when empty). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2;
}
