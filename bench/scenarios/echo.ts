/**
 * Echo round trips of ECHO_SIZE bytes on one open stream, beside raw `node:dgram` ping-pong and
 * bench/native's quiche-peer doing the same echo.
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
    console.error(`  echo p50/p99: quichex ${rttOf(quichex)}, dgram ${rttOf(dgram)}, native ${rttOf(native)}`);
    return {
      figures: {
        echoP50Ms: { quichex: quichex?.p50, dgram: dgram?.p50, native: native?.p50 },
        echoP99Ms: { quichex: quichex?.p99, dgram: dgram?.p99, native: native?.p99 },
      },
      raw: { echo: { quichex, dgram, native } },
    };
  },

  rows(summary) {
    const p50 = valuesOf(summary, 'echoP50Ms');
    return [
      {
        figure: `echo ${ECHO_SIZE} B round trip p50 (lower is better)`,
        values: p50,
        format: fmt.us,
        target: atMost(p50.quichex / p50.dgram, 3, '≤ 3× dgram'),
      },
      {
        figure: `echo ${ECHO_SIZE} B round trip p99 (lower is better)`,
        values: valuesOf(summary, 'echoP99Ms'),
        format: fmt.us,
      },
    ];
  },
};
