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
/** Payload of one QUIC DATAGRAM in the datagram throughput scenario. */
export const DATAGRAM_PAYLOAD = 1200;
/** The socket buffers quichex asks for (lib/endpoint.ts), given to the baselines' sockets too. */
export const SOCKET_BUFFER = 2 * 1024 * 1024;

/** Messages from workers to bench/run.ts. */
export type WorkerMessage =
  | { type: 'ready'; port: number; hash?: string }
  /** A sender finished: when its first byte went out, and what it sent. */
  | { type: 'sent'; start: number; bytes: number; packets?: number }
  /** A receiver's count: bytes, datagrams (or chunks read, for quichex), and when the last arrived. */
  | { type: 'received'; bytes: number; packets: number; last: number }
  /** Round-trip times in milliseconds, after warm-up. */
  | { type: 'samples'; samples: number[] }
  /** A worker's memory after garbage collection, in bytes (the answer to `measure`). */
  | ({ type: 'memory' } & MemorySample)
  /** A client opened `count` connections (`failed` more did not open) in `ms`. */
  | { type: 'connected'; count: number; failed: number; ms: number }
  /**
   * A client opened, used and closed `count` connections in `ms` (`failed` more did not open):
   * `ttfb` holds each one's time from connect to its first echo, in milliseconds.
   */
  | { type: 'handshakes'; count: number; failed: number; ms: number; ttfb: number[] }
  /** Echoes started at once on many connections: how many came back, and each one's latency. */
  | { type: 'echoes'; answered: number; failed: number; latencies: number[] }
  /** A writer has waited on a peer that does not read, with `bytes` taken so far. */
  | { type: 'blocked'; bytes: number; at: number };

/** What `process.memoryUsage()` says, after garbage collection. */
export interface MemorySample {
  rss: number;
  heapUsed: number;
  external: number;
  arrayBuffers: number;
}

/**
 * Messages from bench/run.ts to workers: `report` asks for a count, `go` starts the phase a
 * worker waits for, `measure` asks for a `memory` message, and `stop` ends the worker.
 */
export type ControlMessage = { type: 'report' } | { type: 'go' } | { type: 'measure' } | { type: 'stop' };

/** Sends `message` to bench/run.ts. */
export function report(message: WorkerMessage): void {
  process.send?.(message);
}

/**
 * Calls `stop` when bench/run.ts says so or goes away. `stop` must release every handle (and so
 * end the process); `onReport` answers a request for figures. Answers `measure` itself. Returns
 * whether stopping has begun, so that a worker can tell the errors it caused by stopping from real
 * failures.
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
    else if (m.type === 'measure') void measure().then((sample) => report({ type: 'memory', ...sample }));
    else if (m.type === 'stop') void shutdown();
  });
  process.once('disconnect', () => void shutdown());
  return () => stopping;
}

/** Resolves when bench/run.ts sends `go`. */
export function go(): Promise<void> {
  return new Promise((resolve) => {
    const onMessage = (m: ControlMessage) => {
      if (m.type !== 'go') return;
      process.off('message', onMessage);
      resolve();
    };
    process.on('message', onMessage);
  });
}

/**
 * The process's memory after full garbage collections (workers run with --expose-gc; without it
 * the figures include garbage). Two collections a turn apart, so that finalizers queued by the
 * first (native handles freed from JS) have run before the second.
 */
export async function measure(): Promise<MemorySample> {
  for (let i = 0; i < 2; i++) {
    globalThis.gc?.();
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  const { rss, heapUsed, external, arrayBuffers } = process.memoryUsage();
  return { rss, heapUsed, external, arrayBuffers };
}

/**
 * Runs `task(i)` for i = 0 … count−1 with at most `limit` running at once; resolves when all have
 * settled, with how many rejected.
 */
export async function pool(count: number, limit: number, task: (i: number) => Promise<void>): Promise<number> {
  let next = 0;
  let failed = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      await task(i).catch(() => failed++);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, count) }, lane));
  return failed;
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
