/**
 * Benchmark worker: many quichex client sessions from one process, each its own `QuicTransport`
 * (and so its own socket), pinned to the server's certificate hash. Started by bench/run.ts with
 * --port, --hash, --count <n> and one --mode:
 *   handshake --concurrency <c> --warmup <w>: opens, uses (one echo) and closes n sessions, c at a
 *     time, after w untimed ones (at least one) at the same concurrency; reports `handshakes`.
 *   idle --idle <ms>: opens one warm-up session, echoes once and closes it, reports `connected`
 *     and waits for `go`; then opens n sessions (CONNECT_CONCURRENCY at a time), reports
 *     `connected`, and holds them idle until told to stop.
 *   concurrency --idle <ms>: opens n sessions as idle does, then starts one echo on every one of
 *     them at once; reports `connected`, then `echoes` with each one's time from the common start.
 */
import { type QuicTransport } from './quichex.js';
import { go, now, onControl, pool, report, workerArgs } from './common.js';
import { connect, echoOnce } from './quic-streams.js';

/** Handshakes in flight while a scenario sets up many sessions. */
const CONNECT_CONCURRENCY = 64;
/** An echo not answered within this long counts as failed. */
const ECHO_DEADLINE_MS = 10_000;

const args = workerArgs();
const count = Number(args.count);
const target = { port: args.port, hash: args.hash, idle: Number(args.idle ?? 0) };
const open = new Set<QuicTransport>();
const stopping = onControl(async () => {
  for (const t of open) t.close({ closeCode: 0, reason: 'done' });
  // Let the CONNECTION_CLOSEs leave before the process goes.
  await new Promise((resolve) => setTimeout(resolve, 100));
});

/** A session that is ready, kept in `open` until closed. */
async function session(): Promise<QuicTransport> {
  const t = connect(target);
  open.add(t);
  void t.closed.finally(() => open.delete(t)).catch(() => {});
  try {
    await t.ready;
  } catch (e) {
    open.delete(t);
    throw e;
  }
  return t;
}

/** Opens, echoes on and closes one session; resolves with the time to its first echo. */
async function shortSession(): Promise<number> {
  const start = now();
  const t = await session();
  try {
    await echoOnce(t);
    return now() - start;
  } finally {
    t.close({ closeCode: 0, reason: 'done' });
  }
}

async function handshakes(concurrency: number, warmup: number): Promise<void> {
  // Warm-up: V8 optimises the code of a session only after it has run many times.
  await pool(Math.max(warmup, 1), concurrency, async () => void (await shortSession()));
  const ttfb: number[] = [];
  const start = now();
  const failed = await pool(count, concurrency, async () => void ttfb.push(await shortSession()));
  report({ type: 'handshakes', count: ttfb.length, failed, ms: now() - start, ttfb });
}

/** Opens `count` sessions and reports how many opened. */
async function openAll(): Promise<QuicTransport[]> {
  const sessions: QuicTransport[] = [];
  const start = now();
  const failed = await pool(count, CONNECT_CONCURRENCY, async () => void sessions.push(await session()));
  report({ type: 'connected', count: sessions.length, failed, ms: now() - start });
  return sessions;
}

async function idle(): Promise<void> {
  await shortSession();
  report({ type: 'connected', count: 1, failed: 0, ms: 0 });
  await go();
  await openAll();
}

async function concurrency(): Promise<void> {
  const sessions = await openAll();
  const latencies: number[] = [];
  let failed = count - sessions.length;
  const start = now();
  await Promise.all(
    sessions.map(async (t) => {
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<never>((_, reject) => {
        timer = setTimeout(() => reject(new Error('no answer')), ECHO_DEADLINE_MS);
      });
      try {
        await Promise.race([echoOnce(t), deadline]);
        latencies.push(now() - start);
      } catch {
        failed++;
      } finally {
        clearTimeout(timer);
      }
    }),
  );
  report({ type: 'echoes', answered: latencies.length, failed, latencies });
}

try {
  if (args.mode === 'handshake') await handshakes(Number(args.concurrency), Number(args.warmup ?? 1));
  else if (args.mode === 'idle') await idle();
  else if (args.mode === 'concurrency') await concurrency();
  else throw new Error(`unknown mode ${args.mode}`);
} catch (e) {
  if (!stopping()) throw e; // Stopped mid-run (a timeout): the closed sessions are expected.
}
