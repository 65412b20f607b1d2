/**
 * Position updates over QUIC datagrams, and what their losses look like (`npm run example:datagrams`).
 *
 *   npx tsx examples/datagrams.ts [--rate 60] [--seconds 2] [--loss 5] [--stall 250]
 *
 * A client sends its position --rate times a second for --seconds: a 12-byte datagram built with
 * DataView (seq, x, y). The server keeps the newest position and acknowledges each one newer than
 * what it had by sending it back. Datagrams are never retransmitted, which is what positions want:
 * a lost update is replaced by the next one a frame later, where a stream would hold every later
 * update back until the lost one was resent.
 *
 * To show loss on loopback, the client reaches the server through a small UDP relay in this
 * process that drops --loss percent of the packets each way once the session is up, and the
 * server's read loop stalls once, halfway, for --stall ms (a slow game tick). At the end both
 * sides print their counters from `getStats()` and the sequence numbers that never arrived.
 * Everything runs in this process on 127.0.0.1 and exits by itself.
 */
import { createSocket, type RemoteInfo } from 'node:dgram';
import { setTimeout as sleep } from 'node:timers/promises';
import { parseArgs } from 'node:util';
import { QuicServer, QuicTransport, type DatagramOptions, type QuicTransportStats } from '../lib/index.js';

const { values } = parseArgs({
  options: {
    rate: { type: 'string', default: '60' },
    seconds: { type: 'string', default: '2' },
    loss: { type: 'string', default: '5' },
    stall: { type: 'string', default: '250' },
  },
});
const rate = positive('rate');
const seconds = positive('seconds');
const lossRate = percent('loss');
const stallMs = Number(values.stall);
if (!(stallMs >= 0)) throw new RangeError(`--stall must be a number of ms >= 0, got ${values.stall}`);

/**
 * A position is worth something only until the next one: at 60/s that is 17 ms. Both queues drop
 * what has waited too long rather than hand over a stale position late:
 * - outgoingMaxAge: an update that could not leave within 50 ms (congestion control held it) is
 *   dropped unsent, counted in `expiredOutgoing`; three newer ones are already behind it.
 * - incomingMaxAge: an update that waited 100 ms for the reader (the app was busy) is dropped
 *   unread, counted in `expiredIncoming`; reading it would only move the position backwards.
 * - incomingMaxBufferedDatagrams: at most 8 (about 130 ms worth) wait; a new one arriving at a full
 *   queue drops the oldest, counted in `droppedIncoming`.
 */
const DATAGRAMS: DatagramOptions = { outgoingMaxAge: 50, incomingMaxAge: 100, incomingMaxBufferedDatagrams: 8 };
const UPDATE_BYTES = 12;

interface Position {
  seq: number;
  x: number;
  y: number;
}

/** seq (uint32), x and y (float32), big-endian as DataView writes them by default. */
function encode({ seq, x, y }: Position): Uint8Array {
  const bytes = new Uint8Array(UPDATE_BYTES);
  const view = new DataView(bytes.buffer);
  view.setUint32(0, seq);
  view.setFloat32(4, x);
  view.setFloat32(8, y);
  return bytes;
}

/** The update in `bytes`, or undefined when it is not one (a datagram is whatever the peer sent). */
function decode(bytes: Uint8Array): Position | undefined {
  if (bytes.byteLength !== UPDATE_BYTES) return undefined;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return { seq: view.getUint32(0), x: view.getFloat32(4), y: view.getFloat32(8) };
}

/** What a receiver saw of a numbered sequence: how many arrived, which never did, which came late. */
class Arrivals {
  received = 0;
  late = 0;
  readonly missing: [number, number][] = [];
  #next = 0;

  add(seq: number): void {
    this.received++;
    if (seq < this.#next) this.late++;
    else if (seq > this.#next) this.missing.push([this.#next, seq - 1]);
    this.#next = Math.max(this.#next, seq + 1);
  }

  /** Counts what after the last arrival never came, when `total` were sent. */
  end(total: number): void {
    if (this.#next < total) this.missing.push([this.#next, total - 1]);
    this.#next = total;
  }

  toString(): string {
    const lost = this.missing.reduce((n, [a, b]) => n + b - a + 1, 0);
    const ranges = this.missing.map(([a, b]) => (a === b ? `${a}` : `${a}-${b}`));
    const shown = ranges.length > 10 ? [...ranges.slice(0, 10), '…'] : ranges;
    return `${this.received} received, ${lost} missing${lost ? ` (seq ${shown.join(', ')})` : ''}, ${this.late} late`;
  }
}

/** Reads updates and acknowledges each newer one; stalls once, at `stallAt`, for `stallMs`. */
async function serve(session: QuicTransport, seen: Arrivals, stallAt: number): Promise<void> {
  const acks = session.datagrams.writable.getWriter();
  let latest: Position | undefined;
  let stalled = false;
  for await (const datagram of session.datagrams.readable) {
    const update = decode(datagram);
    if (!update) continue;
    seen.add(update.seq);
    // Behind the newest we have (reordered on the way): the game moves on without it.
    if (latest && update.seq <= latest.seq) continue;
    latest = update;
    await acks.write(encode(latest));
    if (!stalled && update.seq >= stallAt) {
      stalled = true;
      console.log(`server: seq ${update.seq} read; now busy for ${stallMs} ms (a slow tick)`);
      // Updates arrive meanwhile and wait in the incoming queue, bounded by DATAGRAMS above.
      await sleep(stallMs);
    }
  }
}

/** Sends `total` updates at `rate` per second along a circle; resolves after the last write. */
async function sendUpdates(client: QuicTransport, total: number): Promise<void> {
  const writer = client.datagrams.writable.getWriter();
  // Datagrams are never fragmented: one larger than maxDatagramSize is dropped, its write still
  // resolves, and tooLargeOutgoing counts it. This one is here only to show that counter.
  await writer.write(new Uint8Array(client.datagrams.maxDatagramSize + 1));
  const start = performance.now();
  for (let seq = 0; seq < total; seq++) {
    // Paced from the start time, so timer jitter does not add up over the run.
    const wait = start + (seq * 1000) / rate - performance.now();
    if (wait > 0) await sleep(wait);
    const angle = (2 * Math.PI * seq) / rate;
    await writer.write(encode({ seq, x: 100 * Math.cos(angle), y: 100 * Math.sin(angle) }));
  }
  writer.releaseLock();
}

/** A UDP relay for one client that, while `lossy`, drops a share of the packets each way. */
class LossyRelay {
  lossy = false;
  readonly dropped = { up: 0, down: 0 };
  readonly #socket = createSocket('udp4');
  readonly #server: number;
  #client: RemoteInfo | undefined;

  private constructor(serverPort: number) {
    this.#server = serverPort;
    this.#socket.on('message', (packet, from) => {
      const up = from.port !== this.#server;
      if (up) this.#client = from;
      if (this.lossy && Math.random() < lossRate) {
        this.dropped[up ? 'up' : 'down']++;
        return;
      }
      if (up) this.#socket.send(packet, this.#server, '127.0.0.1');
      else if (this.#client) this.#socket.send(packet, this.#client.port, this.#client.address);
    });
  }

  static async open(serverPort: number): Promise<LossyRelay> {
    const relay = new LossyRelay(serverPort);
    await new Promise<void>((resolve) => relay.#socket.bind(0, '127.0.0.1', resolve));
    return relay;
  }

  get port(): number {
    return this.#socket.address().port;
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#socket.close(resolve));
  }
}

async function main(): Promise<void> {
  const total = Math.round(rate * seconds);
  const server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: ['positions'], datagrams: DATAGRAMS });
  await server.listen();
  const relay = await LossyRelay.open(server.address.port);
  const client = new QuicTransport(`quic://127.0.0.1:${relay.port}`, {
    protocols: ['positions'],
    serverCertificateHashes: server.certificateHashes,
    datagrams: DATAGRAMS,
  });
  const tasks: Promise<void>[] = [];
  try {
    const [session] = await Promise.all([server.accept(), client.ready]);
    if (!session) throw new Error('the server closed before the client connected');
    // The handshake went through a clean link; from here on the relay drops packets.
    relay.lossy = lossRate > 0;
    console.log(`sending ${total} updates of ${UPDATE_BYTES} bytes, ${rate}/s for ${seconds} s`);
    console.log(`maxDatagramSize ${client.datagrams.maxDatagramSize}; relay loss ${lossRate * 100}% each way`);

    const atServer = new Arrivals();
    const acked = new Arrivals();
    let lastAck!: () => void;
    const lastAcked = new Promise<void>((resolve) => (lastAck = resolve));
    tasks.push(serve(session, atServer, Math.floor(total / 2)));
    tasks.push(
      (async () => {
        for await (const datagram of client.datagrams.readable) {
          const ack = decode(datagram);
          if (!ack) continue;
          acked.add(ack.seq);
          if (ack.seq === total - 1) lastAck();
        }
      })(),
    );

    await sendUpdates(client, total);
    // The last ack may be lost too: give it a few round trips, then stop listening.
    await Promise.race([lastAcked, sleep(200)]);
    // Heal the link so that the close below is not lost as well.
    relay.lossy = false;
    atServer.end(total);
    acked.end(total);
    const [clientStats, serverStats] = await Promise.all([client.getStats(), session.getStats()]);

    console.log(`updates client → server: ${total} sent; ${atServer}`);
    console.log(`acks    server → client: ${atServer.received} sent; ${acked}`);
    console.log(`relay dropped ${relay.dropped.up} packets client → server, ${relay.dropped.down} server → client`);
    printStats(clientStats, serverStats);

    client.close({ closeCode: 0, reason: 'done' });
    await Promise.all([client.closed, ...tasks]);
  } finally {
    client.close();
    await server.close();
    // Both read loops end once their session does; after a failure, main() reports the first error.
    await Promise.allSettled(tasks);
    await relay.close();
  }
}

function printStats(client: QuicTransportStats, server: QuicTransportStats): void {
  const rows: [string, (s: QuicTransportStats) => number | string][] = [
    ['datagramsSent', (s) => s.datagramsSent],
    ['datagramsReceived', (s) => s.datagramsReceived],
    ['datagrams.droppedIncoming', (s) => s.datagrams.droppedIncoming],
    ['datagrams.expiredIncoming', (s) => s.datagrams.expiredIncoming],
    ['datagrams.expiredOutgoing', (s) => s.datagrams.expiredOutgoing],
    ['datagrams.lostOutgoing', (s) => s.datagrams.lostOutgoing],
    ['datagrams.tooLargeOutgoing', (s) => s.datagrams.tooLargeOutgoing],
    ['packetsLost', (s) => s.packetsLost],
    ['smoothedRtt (ms)', (s) => s.smoothedRtt.toFixed(2)],
  ];
  console.log(`${'getStats()'.padEnd(28)}${'client'.padStart(8)}${'server'.padStart(8)}`);
  for (const [name, get] of rows)
    console.log(`${name.padEnd(28)}${String(get(client)).padStart(8)}${String(get(server)).padStart(8)}`);
}

function positive(name: 'rate' | 'seconds'): number {
  const n = Number(values[name]);
  if (!(n > 0)) throw new RangeError(`--${name} must be a positive number, got ${values[name]}`);
  return n;
}

function percent(name: 'loss'): number {
  const n = Number(values[name]);
  if (!(n >= 0 && n < 100)) throw new RangeError(`--${name} must be a percentage from 0 to 99, got ${values[name]}`);
  return n / 100;
}

try {
  await main();
} catch (e) {
  console.error(`datagrams failed: ${(e as Error).message}`);
  process.exitCode = 1;
}
