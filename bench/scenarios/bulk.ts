/**
 * Bulk throughput: `size` bytes client→server on one stream, server→client on one stream, and
 * client→server split over PARALLEL_STREAMS streams; each beside the raw `node:dgram` blast of the
 * same size (the pump's ceiling, in either direction) and bench/native's quiche-peer doing the same
 * transfer. The one-stream upload is also measured with @matrixai/quic at both ends, moving only
 * its own, much smaller size (at well under 1 MB/s, 256 MiB would take minutes).
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { attempt, scenario, type Args, type Message } from '../harness.js';
import { NATIVE_PEER } from '../native-peer.js';
import { atLeast, fmt, perSecond, valuesOf, type Context, type Scenario, type Settings } from './scenario.js';

/** Streams in the parallel variant. */
export const PARALLEL_STREAMS = 8;
const MIB = 1024 * 1024;

/** One transfer. */
export interface Bulk {
  bytes: number;
  ms: number;
  bytesPerSec: number;
  packets?: number;
  loss?: number;
}

function bulkOf(start: number, bytes: number, last: number): Bulk {
  const ms = last - start;
  return { bytes, ms, bytesPerSec: perSecond(bytes, ms) };
}

const mbit = (b: Bulk | undefined) => (b ? (b.bytesPerSec * 8) / 1e6 : undefined);

/** `client` sends `size` bytes over `streams` streams to `server`, which reports each stream. */
function upload(settings: Settings, name: string, server: [string, Args], client: [string, Args], streams: number) {
  const { size, timeoutMs } = settings;
  return scenario(name, timeoutMs, async (start) => {
    const s = start(...server);
    const { port, hash = '' } = await s.next('ready');
    const c = start(client[0], { ...client[1], port, hash, size, streams });
    const sent = await c.next('sent');
    const received: Message<'received'>[] = [];
    while (received.length < streams) received.push(await s.next('received'));
    const bytes = received.reduce((sum, r) => sum + r.bytes, 0);
    if (bytes !== size) throw new Error(`the server read ${bytes} of ${size} bytes`);
    return bulkOf(sent.start, bytes, Math.max(...received.map((r) => r.last)));
  });
}

/** `server` pushes `size` bytes on one stream to `client`, which reports it. */
function download(settings: Settings, name: string, server: [string, Args], client: [string, Args]) {
  const { size, timeoutMs } = settings;
  return scenario(name, timeoutMs, async (start) => {
    const s = start(server[0], { ...server[1], push: size });
    const { port, hash = '' } = await s.next('ready');
    const c = start(client[0], { ...client[1], port, hash });
    const [sent, received] = await Promise.all([s.next('sent'), c.next('received')]);
    if (received.bytes !== size) throw new Error(`the client read ${received.bytes} of ${size} bytes`);
    return bulkOf(sent.start, received.bytes, received.last);
  });
}

/** The raw `node:dgram` blast of `size` bytes: the pump's ceiling. */
export function dgramBlast(settings: Settings): Promise<Bulk> {
  const { size, timeoutMs } = settings;
  return scenario('dgram bulk', timeoutMs, async (start) => {
    const sink = start('dgram-peer.ts', { role: 'sink' });
    const { port } = await sink.next('ready');
    const sent = await start('dgram-peer.ts', { role: 'blast', port, size }).next('sent');
    await sleep(300); // Whatever is still in the loopback queue arrives well within this.
    sink.send({ type: 'report' });
    const received = await sink.next('received');
    const loss = 1 - received.packets / (sent.packets ?? received.packets);
    return { ...bulkOf(sent.start, received.bytes, received.last), packets: received.packets, loss };
  });
}

const QUIC_SERVER: [string, Args] = ['quic-server.ts', {}];
const NATIVE_SERVER: [string, Args] = [NATIVE_PEER, { role: 'server' }];
const MATRIXAI_SERVER: [string, Args] = ['matrixai-server.ts', {}];

export const bulk: Scenario = {
  name: 'bulk',
  native: true,
  matrixai: true,

  async run(ctx: Context) {
    const { settings: s } = ctx;
    const native = <T>(fn: () => Promise<T>) => (ctx.native ? fn : undefined);
    const dgram = await ctx.shared('dgram blast', () => dgramBlast(s));
    const up = await attempt(() => upload(s, 'quichex bulk', QUIC_SERVER, ['quic-client.ts', { mode: 'bulk' }], 1));
    const upNative = await attempt(
      native(() => upload(s, 'native bulk', NATIVE_SERVER, [NATIVE_PEER, { role: 'bulk' }], 1)),
    );
    const { matrixai: m } = s;
    const upMatrixai = await attempt(
      ctx.matrixai && m
        ? () =>
            upload(
              { ...s, size: m.size },
              'matrixai bulk',
              MATRIXAI_SERVER,
              ['matrixai-client.ts', { mode: 'bulk' }],
              1,
            )
        : undefined,
    );
    const down = await attempt(() =>
      download(s, 'quichex download', QUIC_SERVER, ['quic-client.ts', { mode: 'download' }]),
    );
    const downNative = await attempt(
      native(() => download(s, 'native download', NATIVE_SERVER, [NATIVE_PEER, { role: 'download' }])),
    );
    const streams = PARALLEL_STREAMS;
    const par = await attempt(() =>
      upload(s, 'quichex parallel', QUIC_SERVER, ['quic-client.ts', { mode: 'parallel' }], streams),
    );
    const parNative = await attempt(
      native(() => upload(s, 'native parallel', NATIVE_SERVER, [NATIVE_PEER, { role: 'parallel' }], streams)),
    );
    const rate = (b?: Bulk) => fmt.mbit(mbit(b) ?? NaN);
    const loss = dgram ? ` (loss ${fmt.percent(dgram.loss ?? 0)})` : '';
    const matrixai = m ? `, @matrixai/quic (${m.sizeMiB} MiB) ${rate(upMatrixai)}` : '';
    console.error(`  bulk: quichex ${rate(up)}, dgram ${rate(dgram)}${loss}, native ${rate(upNative)}${matrixai}`);
    console.error(`  bulk server→client: quichex ${rate(down)}, native ${rate(downNative)}`);
    console.error(`  bulk ${streams} streams: quichex ${rate(par)}, native ${rate(parNative)}`);
    const mib = (b?: Bulk) => (b ? b.bytesPerSec / MIB : undefined);
    return {
      figures: {
        bulkMbitPerSec: { quichex: mbit(up), dgram: mbit(dgram), native: mbit(upNative), matrixai: mbit(upMatrixai) },
        bulkMiBPerSec: { quichex: mib(up), dgram: mib(dgram), native: mib(upNative), matrixai: mib(upMatrixai) },
        dgramLoss: { dgram: dgram?.loss },
        bulkDownMbitPerSec: { quichex: mbit(down), dgram: mbit(dgram), native: mbit(downNative) },
        bulkParallelMbitPerSec: { quichex: mbit(par), dgram: mbit(dgram), native: mbit(parNative) },
      },
      raw: {
        bulk: { quichex: up, dgram, native: upNative, matrixai: upMatrixai },
        bulkDown: { quichex: down, native: downNative },
        bulkParallel: { quichex: par, native: parNative },
      },
    };
  },

  rows(summary, settings) {
    const loss = valuesOf(summary, 'dgramLoss').dgram;
    const extra = Number.isFinite(loss) ? { dgram: `, ${fmt.percent(loss)} lost` } : undefined;
    const row = (figure: string, name: string) => ({
      figure,
      values: valuesOf(summary, name),
      format: fmt.mbit,
      extra,
    });
    const size = `${settings.sizeMiB} MiB`;
    const m = settings.matrixai;
    const one = {
      ...row(
        `bulk, ${size} one stream${m ? ` (@matrixai/quic: ${m.sizeMiB} MiB)` : ''} (higher is better)`,
        'bulkMbitPerSec',
      ),
      matrixai: m !== undefined,
    };
    const { quichex: q, dgram: d, native: n } = one.values;
    return [
      { ...one, target: `${atLeast(q / d, 0.5, '≥ 0.5× dgram')}; ${atLeast(q / n, 0.5, '≥ 0.5× native')}` },
      row(`bulk, ${size} one stream server→client`, 'bulkDownMbitPerSec'),
      row(`bulk, ${size} over ${PARALLEL_STREAMS} streams client→server`, 'bulkParallelMbitPerSec'),
    ];
  },

  notes: () => ['bulk: the node:dgram blast (client→server, same size) is the ceiling for all three bulk rows.'],
};
