/**
 * Memory per idle connection: a server process holds N idle connections from one client process
 * (N `QuicTransport`s, each with its own socket). Both measure their RSS and V8 heap after
 * garbage collection before the N connections (after one warm-up connection, so that what the
 * first connection initialises once is not counted) and after; per connection = delta / N. The
 * baseline is bench/native's quiche-peer as the server of the same N quichex clients (its RSS;
 * it has no heap); the target is printed beside.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { type MemorySample } from '../common.js';
import { attempt, rssOf, scenario, type WorkerProcess } from '../harness.js';
import { NATIVE_PEER } from '../native-peer.js';
import { atMost, fmt, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

/** The target: RSS per idle server connection. */
const TARGET_BYTES = 40 * 1024;
/** Idle timeout of these connections: longer than any run. */
export const IDLE_MS = 600_000;
/** Time for the last handshakes to finish on the server before it is measured. */
const SETTLE_MS = 1000;

/** One run at one N: each side's growth per connection, in bytes. */
export interface Idle {
  connections: number;
  failed: number;
  connectMs: number;
  server: { before: MemorySample; after: MemorySample };
  client: { before: MemorySample; after: MemorySample };
}

/** Extra time a run may take per connection, on top of --timeout. */
export const MS_PER_CONNECTION = 20;

/** A native server's memory: its RSS (it has no garbage to collect, nor a JS heap). */
const nativeMemory = (w: WorkerProcess): MemorySample => ({
  rss: rssOf(w.pid),
  heapUsed: NaN,
  external: NaN,
  arrayBuffers: NaN,
});

function idleRun(settings: Settings, n: number, native: boolean) {
  const timeout = settings.timeoutMs + n * MS_PER_CONNECTION;
  const name = `${native ? 'native' : 'quichex'} memory (${n} connections)`;
  return scenario(name, timeout, async (start): Promise<Idle> => {
    const s = native
      ? start(NATIVE_PEER, { role: 'server', idle: IDLE_MS })
      : start('quic-server.ts', { idle: IDLE_MS });
    const measure = () => (native ? nativeMemory(s) : s.measure());
    const { port, hash = '' } = await s.next('ready');
    const c = start('quic-clients.ts', { mode: 'idle', port, hash, count: n, idle: IDLE_MS });
    await c.next('connected'); // the warm-up connection, done
    const before = { server: await measure(), client: await c.measure() };
    c.send({ type: 'go' });
    const opened = await c.next('connected');
    await sleep(SETTLE_MS);
    const after = { server: await measure(), client: await c.measure() };
    return {
      connections: opened.count,
      failed: opened.failed,
      connectMs: opened.ms,
      server: { before: before.server, after: after.server },
      client: { before: before.client, after: after.client },
    };
  });
}

const perConnection = (r: Idle | undefined, side: 'server' | 'client', what: keyof MemorySample) =>
  r && r.connections > 0 ? (r[side].after[what] - r[side].before[what]) / r.connections : undefined;

export const memory: Scenario = {
  name: 'memory',
  native: true,

  async run(ctx: Context) {
    const result: Awaited<ReturnType<Scenario['run']>> = { figures: {}, raw: {} };
    for (const n of ctx.settings.conns) {
      const r = await attempt(() => idleRun(ctx.settings, n, false));
      const nr = await attempt(ctx.native ? () => idleRun(ctx.settings, n, true) : undefined);
      const kib = (v?: number) => fmt.kib(v ?? NaN);
      if (r && r.failed > 0) console.error(`  memory: ${r.failed} of ${n} connections failed to open`);
      console.error(
        `  memory per idle connection (${n}): server RSS ${kib(perConnection(r, 'server', 'rss'))}, ` +
          `heap ${kib(perConnection(r, 'server', 'heapUsed'))}; client RSS ${kib(perConnection(r, 'client', 'rss'))}, ` +
          `heap ${kib(perConnection(r, 'client', 'heapUsed'))}; native server RSS ${kib(perConnection(nr, 'server', 'rss'))}`,
      );
      for (const side of ['server', 'client'] as const)
        for (const what of ['rss', 'heapUsed', 'external'] as const)
          result.figures[`${side}${what[0].toUpperCase()}${what.slice(1)}PerConnection.${n}`] = {
            quichex: perConnection(r, side, what),
            native: side === 'server' && what === 'rss' ? perConnection(nr, side, what) : undefined,
          };
      result.figures[`idleConnected.${n}`] = { quichex: r ? r.connections / n : undefined };
      result.raw[`memory.${n}`] = { quichex: r, native: nr };
    }
    return result;
  },

  rows(summary, settings) {
    return settings.conns.flatMap((n) => {
      const of = (name: string) => valuesOf(summary, `${name}PerConnection.${n}`);
      const serverRss = of('serverRss');
      const opened = valuesOf(summary, `idleConnected.${n}`).quichex;
      const short = opened < 1 ? ` (only ${fmt.percent(opened)} opened)` : '';
      return [
        {
          figure: `RSS per idle connection, server, ${n} conns${short}`,
          values: serverRss,
          format: fmt.kib,
          target: atMost(serverRss.quichex, TARGET_BYTES, '≤ 40 KiB'),
        },
        { figure: `heap per idle connection, server, ${n} conns`, values: of('serverHeapUsed'), format: fmt.kib },
        { figure: `RSS per idle connection, client, ${n} conns`, values: of('clientRss'), format: fmt.kib },
        { figure: `heap per idle connection, client, ${n} conns`, values: of('clientHeapUsed'), format: fmt.kib },
      ];
    });
  },

  notes: (settings) => [
    'memory: per connection = (after − before) / N, each after gc(); the client process holds one QuicTransport,',
    `  so one socket, per connection (open-file limit ${settings.fdLimit}); baseline: native quiche-peer as the`,
    '  server of the same quichex clients (RSS only).',
  ],
};
