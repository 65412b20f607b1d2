/**
 * Backpressure: the client writes `pausedMiB` in 64 KiB chunks, awaiting each write, on a stream
 * the server never reads. Both processes' RSS is sampled every 100 ms, from before the first
 * write until `pausedMs` after the writer blocked (or until everything was taken); the figure is
 * the largest growth over the RSS before the transfer, which is the baseline it is printed with.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { attempt, rssOf, scenario, type WorkerProcess } from '../harness.js';
import { median } from '../common.js';
import { atMost, fmt, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

const MIB = 1024 * 1024;
/** The target: RSS growth while the data waits behind a paused reader. */
const TARGET_BYTES = 64 * MIB;
const SAMPLE_MS = 100;

/** One run: each side's RSS before, and its largest growth. */
export interface Paused {
  client: { before: number; growth: number };
  server: { before: number; growth: number };
  /** Bytes the writer got rid of before it blocked, or in all if it never did. */
  taken: number;
  blocked: boolean;
  samples: { at: number; client: number; server: number }[];
}

function pausedRun(settings: Settings): Promise<Paused> {
  const { pausedMiB, pausedMs, timeoutMs } = settings;
  return scenario('quichex paused reader', timeoutMs + pausedMs, async (start) => {
    const s = start('quic-server.ts', { paused: 1 });
    const { port, hash = '' } = await s.next('ready');
    const c = start('quic-client.ts', { mode: 'paused', port, hash, size: pausedMiB * MIB });
    await c.next('connected');
    const sample = (w: WorkerProcess) => rssOf(w.pid);
    const before = { client: [] as number[], server: [] as number[] };
    for (let i = 0; i < 5; i++, await sleep(SAMPLE_MS)) {
      before.client.push(sample(c));
      before.server.push(sample(s));
    }
    const base = { client: median(before.client), server: median(before.server) };
    c.send({ type: 'go' });
    const t0 = Date.now();
    // Until pausedMs after the writer blocked, or until all was sent; the scenario's timeout ends
    // a writer that does neither.
    let end = Infinity;
    let taken: number | undefined;
    let blocked = false;
    void c.next('blocked').then(
      (m) => ((blocked = true), (taken = m.bytes), (end = Date.now() + pausedMs)),
      () => {},
    );
    let sent = false;
    void c.next('sent').then(
      (m) => ((sent = true), (taken ??= m.bytes)),
      () => {},
    );
    const samples: Paused['samples'] = [];
    while (Date.now() < end && !sent) {
      samples.push({ at: Date.now() - t0, client: sample(c), server: sample(s) });
      await sleep(SAMPLE_MS);
    }
    const growth = (side: 'client' | 'server') => Math.max(0, ...samples.map((x) => x[side] - base[side]));
    return {
      client: { before: base.client, growth: growth('client') },
      server: { before: base.server, growth: growth('server') },
      taken: taken ?? NaN,
      blocked,
      samples,
    };
  });
}

export const paused: Scenario = {
  name: 'paused',
  native: false,

  async run(ctx: Context) {
    const r = await attempt(() => pausedRun(ctx.settings));
    if (r) {
      const of = (side: 'client' | 'server') => `+${fmt.mib(r[side].growth)} over ${fmt.mib(r[side].before)}`;
      const how = r.blocked ? `blocked after ${fmt.mib(r.taken)}` : `never blocked: all ${fmt.mib(r.taken)} taken`;
      console.error(`  paused reader: client RSS ${of('client')}, server RSS ${of('server')}; writer ${how}`);
    }
    return {
      figures: {
        pausedClientGrowth: { quichex: r?.client.growth },
        pausedServerGrowth: { quichex: r?.server.growth },
        pausedClientBefore: { quichex: r?.client.before },
        pausedServerBefore: { quichex: r?.server.before },
        pausedTaken: { quichex: r?.taken },
      },
      raw: { paused: { quichex: r } },
    };
  },

  rows(summary, settings) {
    const row = (side: 'Client' | 'Server') => {
      const values = valuesOf(summary, `paused${side}Growth`);
      const before = valuesOf(summary, `paused${side}Before`).quichex;
      return {
        figure: `${side.toLowerCase()} RSS growth, ${settings.pausedMiB} MiB to a paused reader`,
        values,
        format: fmt.mib,
        extra: { quichex: ` (from ${fmt.mib(before)})` },
        target: atMost(values.quichex, TARGET_BYTES, '≤ 64 MiB'),
      };
    };
    const taken = valuesOf(summary, 'pausedTaken');
    return [
      row('Client'),
      row('Server'),
      { figure: 'bytes taken before the writer blocked', values: taken, format: fmt.mib },
    ];
  },

  notes: (settings) => [
    `paused: RSS sampled every ${SAMPLE_MS} ms until ${settings.pausedMs / 1000} s after the writer blocked; growth over the RSS before.`,
  ],
};
