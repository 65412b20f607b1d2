/**
 * Echo round trips of ECHO_SIZE bytes on one open stream, beside raw `node:dgram` ping-pong,
 * bench/native's quiche-peer doing the same echo, and @matrixai/quic at both ends (fewer round
 * trips: its own --matrixai-iterations).
 */
import { ECHO_SIZE, percentile } from '../common.js';
import { attempt, canPin, scenario, type Args } from '../harness.js';
import { NATIVE_PEER } from '../native-peer.js';
import { atMost, fmt, valuesOf, type Context, type RunResult, type Scenario, type Settings } from './scenario.js';

/** One run of round trips. */
export interface Echo {
  p50: number;
  p99: number;
  samples: number[];
}

/**
 * Where a pair's two processes run. On one CPU a wake-up is a context switch and a round trip
 * is the two sides' work added up; on two CPUs each side wakes on its own, which on a VM costs
 * more than the whole of the baseline's work (node:dgram's ping-pong: about 23 µs on one CPU,
 * 70–80 µs on two, here). Left to the scheduler, a run gets either, so each pair runs pinned
 * both ways (when `taskset` and two CPUs are there).
 */
export interface Placement {
  key: string;
  label: string;
  server?: number;
  client?: number;
}

const PLACEMENTS: Placement[] = canPin()
  ? [
      { key: 'one', label: 'both on one CPU', server: 0, client: 0 },
      { key: 'two', label: 'on two CPUs', server: 0, client: 1 },
    ]
  : [{ key: 'any', label: 'as the scheduler places them' }];

/** Sequential round trips from `client` to `server`, placed as `at` says. */
export function echoRun(
  settings: Settings,
  name: string,
  server: [string, Args],
  client: [string, Args],
  at: Placement = { key: 'any', label: '' },
) {
  const { iterations, warmup, timeoutMs } = settings;
  return scenario(name, timeoutMs, async (start): Promise<Echo> => {
    const s = start(...server, at.server);
    const { port, hash = '' } = await s.next('ready');
    const c = start(client[0], { ...client[1], port, hash, iterations, warmup }, at.client);
    const { samples } = await c.next('samples');
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
  });
}

/** The raw `node:dgram` ping-pong: the pump's latency floor. */
export const dgramPing = (settings: Settings, at?: Placement) =>
  echoRun(settings, 'dgram echo', ['dgram-peer.ts', { role: 'echo' }], ['dgram-peer.ts', { role: 'ping' }], at);

/** "p50 / p99" of a run, for the progress lines. */
export const rttOf = (e?: Echo) => (e ? `${fmt.us(e.p50)} / ${fmt.us(e.p99)}` : '-');

export const echo: Scenario = {
  name: 'echo',
  native: true,
  matrixai: true,

  async run(ctx: Context) {
    const { settings: s } = ctx;
    const { matrixai: m } = s;
    const result: RunResult = { figures: {}, raw: {} };
    for (const at of PLACEMENTS) {
      const quichex = await attempt(() =>
        echoRun(s, 'quichex echo', ['quic-server.ts', {}], ['quic-client.ts', { mode: 'echo' }], at),
      );
      const dgram = await ctx.shared(`dgram ping ${at.key}`, () => dgramPing(s, at));
      const native = await attempt(
        ctx.native
          ? () => echoRun(s, 'native echo', [NATIVE_PEER, { role: 'server' }], [NATIVE_PEER, { role: 'echo' }], at)
          : undefined,
      );
      const matrixai = await attempt(
        ctx.matrixai && m
          ? () =>
              echoRun(
                { ...s, iterations: m.iterations, warmup: m.warmup },
                'matrixai echo',
                ['matrixai-server.ts', {}],
                ['matrixai-client.ts', { mode: 'echo' }],
                at,
              )
          : undefined,
      );
      const others = `dgram ${rttOf(dgram)}, native ${rttOf(native)}${m ? `, @matrixai/quic ${rttOf(matrixai)}` : ''}`;
      const ratio = quichex && dgram ? ` (p50 ${(quichex.p50 / dgram.p50).toFixed(2)}× dgram in this run)` : '';
      console.error(`  echo p50/p99 ${at.label}: quichex ${rttOf(quichex)}, ${others}${ratio}`);
      result.figures[`echoP50Ms.${at.key}`] = {
        quichex: quichex?.p50,
        dgram: dgram?.p50,
        native: native?.p50,
        matrixai: matrixai?.p50,
      };
      result.figures[`echoP99Ms.${at.key}`] = {
        quichex: quichex?.p99,
        dgram: dgram?.p99,
        native: native?.p99,
        matrixai: matrixai?.p99,
      };
      result.raw[`echo.${at.key}`] = { quichex, dgram, native, matrixai };
    }
    return result;
  },

  notes: () => [
    PLACEMENTS.length > 1
      ? 'echo: each pair twice, both processes pinned to CPU 0, then server on CPU 0 and client on CPU 1 (taskset).'
      : 'echo: processes placed by the scheduler (no taskset, or one CPU): one run may differ from the next.',
  ],

  rows(summary, settings) {
    const m = settings.matrixai;
    const of = m ? ` (${settings.iterations} round trips; @matrixai/quic: ${m.iterations})` : '';
    return PLACEMENTS.flatMap((at) => {
      const p50 = valuesOf(summary, `echoP50Ms.${at.key}`);
      return [
        {
          figure: `echo ${ECHO_SIZE} B round trip p50, ${at.label}${of} (lower is better)`,
          values: p50,
          format: fmt.us,
          target: atMost(p50.quichex / p50.dgram, 3, '≤ 3× dgram'),
          matrixai: m !== undefined,
        },
        {
          figure: `echo ${ECHO_SIZE} B round trip p99, ${at.label}${of} (lower is better)`,
          values: valuesOf(summary, `echoP99Ms.${at.key}`),
          format: fmt.us,
          matrixai: m !== undefined,
        },
      ];
    });
  },
};
