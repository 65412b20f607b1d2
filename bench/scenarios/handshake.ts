/**
 * New connections per second: one client process opens `handshakes` connections to one server,
 * each with a full handshake that pins the server's certificate hash, one echo of ECHO_SIZE bytes
 * on a new stream, and a close; sequentially and with several in flight, each run after
 * `handshakeWarmup` untimed connections at the same concurrency. Time to first byte is
 * connect → handshake → stream → echo answered. The baseline is bench/native's quiche-peer doing
 * the same (its client runs one thread per connection in flight, each with its own socket), and
 * @matrixai/quic at both ends opening fewer connections (--matrixai-handshakes); the issue's
 * absolute target is printed beside.
 */
import { ECHO_SIZE, percentile } from '../common.js';
import { attempt, scenario, type Args, type Message } from '../harness.js';
import { NATIVE_PEER } from '../native-peer.js';
import { atLeast, fmt, perSecond, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

/** The issue's target: new verified connections per second. */
const TARGET_PER_SEC = 1000;

/** One run: the rate and the times to first byte. */
export interface Handshakes {
  perSec: number;
  p50: number;
  p99: number;
  failed: number;
  ms: number;
  /** Each connection's time to its first echo, in milliseconds. */
  ttfb: number[];
}

function handshakes(settings: Settings, name: string, server: [string, Args], client: [string, Args]) {
  const { handshakes: count, handshakeWarmup: warmup, timeoutMs } = settings;
  return scenario(name, timeoutMs, async (start): Promise<Handshakes> => {
    const s = start(...server);
    const { port, hash = '' } = await s.next('ready');
    const r: Message<'handshakes'> = await start(client[0], { ...client[1], port, hash, count, warmup }).next(
      'handshakes',
    );
    if (r.failed > 0) console.error(`  ${name}: ${r.failed} of ${count} connections failed`);
    const p = (q: number) => percentile(r.ttfb, q);
    return { perSec: perSecond(r.count, r.ms), p50: p(50), p99: p(99), failed: r.failed, ms: r.ms, ttfb: r.ttfb };
  });
}

const key = (c: number) => (c === 1 ? 'sequential' : `${c} in flight`);

export const handshake: Scenario = {
  name: 'handshake',
  native: true,
  matrixai: true,

  async run(ctx: Context) {
    const { settings: s } = ctx;
    const result: Awaited<ReturnType<Scenario['run']>> = { figures: {}, raw: {} };
    for (const c of s.handshakeConcurrency) {
      const args = { mode: 'handshake', concurrency: c };
      const quichex = await attempt(() =>
        handshakes(s, `quichex handshakes (${key(c)})`, ['quic-server.ts', {}], ['quic-clients.ts', args]),
      );
      const native = await attempt(
        ctx.native
          ? () =>
              handshakes(
                s,
                `native handshakes (${key(c)})`,
                [NATIVE_PEER, { role: 'server' }],
                [NATIVE_PEER, { role: 'handshake', concurrency: c }],
              )
          : undefined,
      );
      const { matrixai: m } = s;
      const matrixai = await attempt(
        ctx.matrixai && m
          ? () =>
              handshakes(
                { ...s, handshakes: m.handshakes, handshakeWarmup: m.handshakeWarmup },
                `matrixai handshakes (${key(c)})`,
                ['matrixai-server.ts', {}],
                ['matrixai-client.ts', args],
              )
          : undefined,
      );
      const rate = (h?: Handshakes) =>
        h ? `${fmt.perSec('conn')(h.perSec)} (ttfb ${fmt.ms(h.p50)} / ${fmt.ms(h.p99)})` : '-';
      const others = `native ${rate(native)}${m ? `, @matrixai/quic ${rate(matrixai)}` : ''}`;
      console.error(`  handshakes ${key(c)}: quichex ${rate(quichex)}, ${others}`);
      const figure = (f: (h: Handshakes) => number) => ({
        quichex: quichex && f(quichex),
        native: native && f(native),
        matrixai: matrixai && f(matrixai),
      });
      result.figures[`handshakesPerSec.${c}`] = figure((h) => h.perSec);
      result.figures[`ttfbP50Ms.${c}`] = figure((h) => h.p50);
      result.figures[`ttfbP99Ms.${c}`] = figure((h) => h.p99);
      result.raw[`handshake.${c}`] = { quichex, native, matrixai };
    }
    return result;
  },

  rows(summary, settings) {
    const m = settings.matrixai;
    const matrixai = m !== undefined;
    return settings.handshakeConcurrency.flatMap((c) => {
      const rate = valuesOf(summary, `handshakesPerSec.${c}`);
      const what = `${settings.handshakes} conns${m ? ` (@matrixai/quic: ${m.handshakes})` : ''} ${key(c)}`;
      const ttfb = (p: number) => ({
        figure: `time to first echo p${p}, ${what}`,
        values: valuesOf(summary, `ttfbP${p}Ms.${c}`),
        format: fmt.ms,
        matrixai,
      });
      return [
        {
          figure: `new verified connections/s, ${what}`,
          values: rate,
          format: fmt.perSec('conn'),
          target: atLeast(rate.quichex, TARGET_PER_SEC, `≥ ${TARGET_PER_SEC} conn/s`),
          matrixai,
        },
        ttfb(50),
        ttfb(99),
      ];
    });
  },

  notes: (settings) => [
    `handshake: each connection pins the server's certificate hash, opens a stream, echoes ${ECHO_SIZE} B and closes;`,
    '  baseline: native quiche-peer doing the same, one client thread per connection in flight;',
    `  each run is timed after ${settings.handshakeWarmup} untimed connections at the same concurrency.`,
  ],
};
