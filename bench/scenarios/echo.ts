/**
 * Echo round trips of ECHO_SIZE bytes on one open stream, beside raw `node:dgram` ping-pong,
 * bench/native's quiche-peer doing the same echo, and @matrixai/quic at both ends (fewer round
 * trips: its own --matrixai-iterations).
 */
import { ECHO_SIZE, percentile } from '../common.js';
import { attempt, scenario, type Args } from '../harness.js';
import { NATIVE_PEER } from '../native-peer.js';
import { atMost, fmt, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

/** One run of round trips. */
export interface Echo {
  p50: number;
  p99: number;
  samples: number[];
}

/** Sequential round trips from `client` to `server`. */
export function echoRun(settings: Settings, name: string, server: [string, Args], client: [string, Args]) {
  const { iterations, warmup, timeoutMs } = settings;
  return scenario(name, timeoutMs, async (start): Promise<Echo> => {
    const s = start(...server);
    const { port, hash = '' } = await s.next('ready');
    const { samples } = await start(client[0], { ...client[1], port, hash, iterations, warmup }).next('samples');
    return { p50: percentile(samples, 50), p99: percentile(samples, 99), samples };
  });
}

/** The raw `node:dgram` ping-pong: the pump's latency floor. */
export const dgramPing = (settings: Settings) =>
  echoRun(settings, 'dgram echo', ['dgram-peer.ts', { role: 'echo' }], ['dgram-peer.ts', { role: 'ping' }]);

/** "p50 / p99" of a run, for the progress lines. */
export const rttOf = (e?: Echo) => (e ? `${fmt.us(e.p50)} / ${fmt.us(e.p99)}` : '-');

export const echo: Scenario = {
  name: 'echo',
  native: true,
  matrixai: true,

  async run(ctx: Context) {
    const { settings: s } = ctx;
    const quichex = await attempt(() =>
      echoRun(s, 'quichex echo', ['quic-server.ts', {}], ['quic-client.ts', { mode: 'echo' }]),
    );
    const dgram = await ctx.shared('dgram ping', () => dgramPing(s));
    const native = await attempt(
      ctx.native
        ? () => echoRun(s, 'native echo', [NATIVE_PEER, { role: 'server' }], [NATIVE_PEER, { role: 'echo' }])
        : undefined,
    );
    const { matrixai: m } = s;
    const matrixai = await attempt(
      ctx.matrixai && m
        ? () =>
            echoRun(
              { ...s, iterations: m.iterations, warmup: m.warmup },
              'matrixai echo',
              ['matrixai-server.ts', {}],
              ['matrixai-client.ts', { mode: 'echo' }],
            )
        : undefined,
    );
    const others = `dgram ${rttOf(dgram)}, native ${rttOf(native)}${m ? `, @matrixai/quic ${rttOf(matrixai)}` : ''}`;
    // This run's own ratio: the medians of the table can hide a run on a quiet host.
    const ratio = quichex && dgram ? ` (p50 ${(quichex.p50 / dgram.p50).toFixed(2)}× dgram in this run)` : '';
    console.error(`  echo p50/p99: quichex ${rttOf(quichex)}, ${others}${ratio}`);
    return {
      figures: {
        echoP50Ms: { quichex: quichex?.p50, dgram: dgram?.p50, native: native?.p50, matrixai: matrixai?.p50 },
        echoP99Ms: { quichex: quichex?.p99, dgram: dgram?.p99, native: native?.p99, matrixai: matrixai?.p99 },
      },
      raw: { echo: { quichex, dgram, native, matrixai } },
    };
  },

  rows(summary, settings) {
    const p50 = valuesOf(summary, 'echoP50Ms');
    const m = settings.matrixai;
    const of = m ? ` (${settings.iterations} round trips; @matrixai/quic: ${m.iterations})` : '';
    return [
      {
        figure: `echo ${ECHO_SIZE} B round trip p50${of} (lower is better)`,
        values: p50,
        format: fmt.us,
        target: atMost(p50.quichex / p50.dgram, 3, '≤ 3× dgram'),
        matrixai: m !== undefined,
      },
      {
        figure: `echo ${ECHO_SIZE} B round trip p99${of} (lower is better)`,
        values: valuesOf(summary, 'echoP99Ms'),
        format: fmt.us,
        matrixai: m !== undefined,
      },
    ];
  },
};
