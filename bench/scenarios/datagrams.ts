/**
 * QUIC DATAGRAMs: the client sends DATAGRAM_PAYLOAD-byte datagrams as fast as its writes resolve
 * for a fixed time and the server counts what arrives (datagrams/s received, and the share lost);
 * then sequential ECHO_SIZE-byte datagram round trips. Baselines: the same run's raw `node:dgram`
 * blast (DATAGRAM_SIZE bytes each) and ping-pong.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { DATAGRAM_PAYLOAD, DATAGRAM_SIZE, ECHO_SIZE } from '../common.js';
import { attempt, scenario } from '../harness.js';
import { dgramBlast } from './bulk.js';
import { dgramPing, echoRun, rttOf } from './echo.js';
import { fmt, perSecond, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

/** One run of sending. */
export interface Flood {
  perSec: number;
  sent: number;
  received: number;
  loss: number;
}

function flood(settings: Settings): Promise<Flood> {
  const { datagramMs, timeoutMs } = settings;
  return scenario('quichex datagrams', timeoutMs + datagramMs, async (start) => {
    const s = start('quic-server.ts', { datagrams: 'count' });
    const { port, hash = '' } = await s.next('ready');
    const sent = await start('quic-client.ts', { mode: 'datagrams', port, hash, duration: datagramMs }).next('sent');
    await sleep(300); // Whatever is still on its way arrives well within this.
    s.send({ type: 'report' });
    const received = await s.next('received');
    const count = sent.packets ?? 0;
    return {
      perSec: perSecond(received.packets, received.last - sent.start),
      sent: count,
      received: received.packets,
      loss: 1 - received.packets / count,
    };
  });
}

export const datagrams: Scenario = {
  name: 'datagrams',
  native: false,

  async run(ctx: Context) {
    const { settings: s } = ctx;
    const quichex = await attempt(() => flood(s));
    const blast = await ctx.shared('dgram blast', () => dgramBlast(s));
    const dgram = blast?.packets === undefined ? undefined : perSecond(blast.packets, blast.ms);
    const rtt = await attempt(() =>
      echoRun(
        s,
        'quichex datagram echo',
        ['quic-server.ts', { datagrams: 'echo' }],
        ['quic-client.ts', { mode: 'datagram-echo' }],
      ),
    );
    const ping = await ctx.shared('dgram ping', () => dgramPing(s));
    const rate = fmt.perSec('dgram');
    const lost = quichex ? ` (${fmt.percent(quichex.loss)} lost)` : '';
    console.error(`  datagrams: quichex ${rate(quichex?.perSec ?? NaN)}${lost}, dgram ${rate(dgram ?? NaN)}`);
    console.error(`  datagram round trip p50/p99: quichex ${rttOf(rtt)}, dgram ${rttOf(ping)}`);
    return {
      figures: {
        datagramsPerSec: { quichex: quichex?.perSec, dgram },
        datagramLoss: { quichex: quichex?.loss, dgram: blast?.loss },
        datagramRttP50Ms: { quichex: rtt?.p50, dgram: ping?.p50 },
        datagramRttP99Ms: { quichex: rtt?.p99, dgram: ping?.p99 },
      },
      raw: { datagrams: { quichex }, datagramEcho: { quichex: rtt, dgram: ping } },
    };
  },

  rows(summary) {
    const loss = valuesOf(summary, 'datagramLoss');
    const lost = (v: number) => (Number.isFinite(v) ? `, ${fmt.percent(v)} lost` : '');
    return [
      {
        figure: `datagrams received/s, ${DATAGRAM_PAYLOAD} B (dgram: ${DATAGRAM_SIZE} B)`,
        values: valuesOf(summary, 'datagramsPerSec'),
        format: fmt.perSec('dgram'),
        extra: { quichex: lost(loss.quichex), dgram: lost(loss.dgram) },
      },
      {
        figure: `datagram ${ECHO_SIZE} B round trip p50`,
        values: valuesOf(summary, 'datagramRttP50Ms'),
        format: fmt.us,
      },
      {
        figure: `datagram ${ECHO_SIZE} B round trip p99`,
        values: valuesOf(summary, 'datagramRttP99Ms'),
        format: fmt.us,
      },
    ];
  },

  notes: (settings) => [
    `datagrams: sent for ${settings.datagramMs / 1000} s, each write awaited; baseline: the node:dgram blast of the bulk rows.`,
  ],
};
