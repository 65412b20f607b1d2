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
/**
 * Further time the connections stay idle before the second measurement. Right after a burst of
 * handshakes both processes still hold what the burst grew (V8's young generation, freed malloc
 * memory not yet returned), about 18 KiB per connection at 1000 connections; V8's memory reducer
 * and the allocator give it back within seconds of quiet.
 */
const IDLE_SETTLE_MS = 15_000;

/** One run at one N: each side's growth per connection, in bytes. */
export interface Idle {
  connections: number;
  failed: number;
  connectMs: number;
  server: Record<Point, MemorySample>;
  client: Record<Point, MemorySample>;
}

/** When memory is measured: before the N connections, 1 s after they opened, after 15 s more idle. */
type Point = 'before' | 'after' | 'idle';

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
  const timeout = settings.timeoutMs + IDLE_SETTLE_MS + n * MS_PER_CONNECTION;
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
    await sleep(IDLE_SETTLE_MS);
    const idle = { server: await measure(), client: await c.measure() };
    return {
      connections: opened.count,
      failed: opened.failed,
      connectMs: opened.ms,
      server: { before: before.server, after: after.server, idle: idle.server },
      client: { before: before.client, after: after.client, idle: idle.client },
    };
  });
}

const perConnection = (r: Idle | undefined, side: 'server' | 'client', what: keyof MemorySample, at: Point) =>
  r && r.connections > 0 ? (r[side][at][what] - r[side].before[what]) / r.connections : undefined;

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
      const each = (side: 'server' | 'client', what: keyof MemorySample, at: Point, of = r) =>
        kib(perConnection(of, side, what, at));
      console.error(
        `  memory per idle connection (${n}): server RSS ${each('server', 'rss', 'after')} after 1 s, ` +
          `${each('server', 'rss', 'idle')} idle, heap ${each('server', 'heapUsed', 'idle')}; client RSS ` +
          `${each('client', 'rss', 'after')} / ${each('client', 'rss', 'idle')}, heap ${each('client', 'heapUsed', 'idle')}; ` +
          `native server RSS ${each('server', 'rss', 'after', nr)} / ${each('server', 'rss', 'idle', nr)}`,
      );
      for (const side of ['server', 'client'] as const)
        for (const what of ['rss', 'heapUsed', 'external'] as const)
          for (const at of ['after', 'idle'] as const)
            result.figures[`${side}${what[0].toUpperCase()}${what.slice(1)}PerConnection.${at}.${n}`] = {
              quichex: perConnection(r, side, what, at),
              native: side === 'server' && what === 'rss' ? perConnection(nr, side, what, at) : undefined,
            };
      result.figures[`idleConnected.${n}`] = { quichex: r ? r.connections / n : undefined };
      result.raw[`memory.${n}`] = { quichex: r, native: nr };
    }
    return result;
  },

  rows(summary, settings) {
    return settings.conns.flatMap((n) => {
      const of = (name: string, at: Point) => valuesOf(summary, `${name}PerConnection.${at}.${n}`);
      const serverRss = of('serverRss', 'idle');
      const opened = valuesOf(summary, `idleConnected.${n}`).quichex;
      const short = opened < 1 ? ` (only ${fmt.percent(opened)} opened)` : '';
      return [
        {
          figure: `RSS per idle connection, server, ${n} conns${short}`,
          values: serverRss,
          format: fmt.kib,
          target: atMost(serverRss.quichex, TARGET_BYTES, '≤ 40 KiB'),
        },
        { figure: `  the same, 1 s after the handshakes`, values: of('serverRss', 'after'), format: fmt.kib },
        {
          figure: `heap per idle connection, server, ${n} conns`,
          values: of('serverHeapUsed', 'idle'),
          format: fmt.kib,
        },
        { figure: `RSS per idle connection, client, ${n} conns`, values: of('clientRss', 'idle'), format: fmt.kib },
        { figure: `  the same, 1 s after the handshakes`, values: of('clientRss', 'after'), format: fmt.kib },
        {
          figure: `heap per idle connection, client, ${n} conns`,
          values: of('clientHeapUsed', 'idle'),
          format: fmt.kib,
        },
      ];
    });
  },

  notes: (settings) => [
    'memory: per connection = (after − before) / N, each after gc(), measured once the N connections have been',
    `  idle ${IDLE_SETTLE_MS / 1000} s (the target's row) and 1 s after they opened; the client process holds one QuicTransport,`,
    `  so one socket, per connection (open-file limit ${settings.fdLimit}); baseline: native quiche-peer as the`,
    '  server of the same quichex clients (RSS only).',
  ],
};
