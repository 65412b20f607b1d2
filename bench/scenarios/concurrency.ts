/**
 * Concurrency: N connections from one client process to one server, opened first; then each
 * starts one echo of ECHO_SIZE bytes on a new stream at the same moment. Reports the share of
 * echoes answered within 10 s and their latency from that common start. Baseline: N `node:dgram`
 * sockets in one process each sending one ping at once to a `node:dgram` echo process (resent
 * every 200 ms until answered, as QUIC would retransmit).
 */
import { ECHO_SIZE, percentile } from '../common.js';
import { attempt, scenario, type Message } from '../harness.js';
import { IDLE_MS, MS_PER_CONNECTION } from './memory.js';
import { atLeast, fmt, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

/** One run at one N. */
export interface Burst {
  success: number;
  p50: number;
  p99: number;
  answered: number;
  failed: number;
  connectMs?: number;
  /** Each answered echo's time from the common start, in milliseconds. */
  latencies: number[];
}

function burstOf(n: number, echoes: Message<'echoes'>, connectMs?: number): Burst {
  const { answered, failed, latencies } = echoes;
  return {
    success: answered / n,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    answered,
    failed,
    connectMs,
    latencies,
  };
}

function quichexBurst(settings: Settings, n: number) {
  const timeout = settings.timeoutMs + n * MS_PER_CONNECTION;
  return scenario(`quichex concurrency (${n})`, timeout, async (start) => {
    const s = start('quic-server.ts', { idle: IDLE_MS });
    const { port, hash = '' } = await s.next('ready');
    const c = start('quic-clients.ts', { mode: 'concurrency', port, hash, count: n, idle: IDLE_MS });
    const connected = await c.next('connected');
    if (connected.failed > 0) console.error(`  concurrency: ${connected.failed} of ${n} connections failed to open`);
    return burstOf(n, await c.next('echoes'), connected.ms);
  });
}

function dgramBurst(settings: Settings, n: number) {
  return scenario(`dgram concurrency (${n})`, settings.timeoutMs, async (start) => {
    const s = start('dgram-peer.ts', { role: 'echo' });
    const { port } = await s.next('ready');
    return burstOf(n, await start('dgram-peer.ts', { role: 'ping-many', port, count: n }).next('echoes'));
  });
}

export const concurrency: Scenario = {
  name: 'concurrency',
  native: false,

  async run(ctx: Context) {
    const result: Awaited<ReturnType<Scenario['run']>> = { figures: {}, raw: {} };
    for (const n of ctx.settings.conns) {
      const quichex = await attempt(() => quichexBurst(ctx.settings, n));
      const dgram = await attempt(() => dgramBurst(ctx.settings, n));
      const of = (b?: Burst) =>
        b ? `${fmt.percent(b.success)} answered, p50 ${fmt.ms(b.p50)}, p99 ${fmt.ms(b.p99)}` : '-';
      console.error(`  concurrency ${n}: quichex ${of(quichex)}; dgram ${of(dgram)}`);
      result.figures[`concurrencySuccess.${n}`] = { quichex: quichex?.success, dgram: dgram?.success };
      result.figures[`concurrencyP50Ms.${n}`] = { quichex: quichex?.p50, dgram: dgram?.p50 };
      result.figures[`concurrencyP99Ms.${n}`] = { quichex: quichex?.p99, dgram: dgram?.p99 };
      result.raw[`concurrency.${n}`] = { quichex, dgram };
    }
    return result;
  },

  rows(summary, settings) {
    return settings.conns.flatMap((n) => {
      const success = valuesOf(summary, `concurrencySuccess.${n}`);
      return [
        {
          figure: `${n} conns, one echo each at once: answered`,
          values: success,
          format: fmt.percent,
          target: atLeast(success.quichex, 1, n >= 10_000 ? 'all answered at 10k' : 'all answered'),
        },
        {
          figure: `${n} conns at once: echo latency p50`,
          values: valuesOf(summary, `concurrencyP50Ms.${n}`),
          format: fmt.ms,
        },
        {
          figure: `${n} conns at once: echo latency p99`,
          values: valuesOf(summary, `concurrencyP99Ms.${n}`),
          format: fmt.ms,
        },
      ];
    });
  },

  notes: () => [
    `concurrency: latency from the common start to each ${ECHO_SIZE} B echo answered; baseline: as many node:dgram`,
    '  sockets each pinging a node:dgram echo process at once (resent every 200 ms until answered).',
  ],
};
