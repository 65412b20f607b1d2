/**
 * `sendOrder` of datagram writables: of the datagrams waiting to be sent, those of a higher
 * `sendOrder` go first; equal ones go in write order. Observed by queueing before `ready`
 * (nothing leaves until then) and reading what arrives: on loopback, without loss, arrival
 * order is send order.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QuicServer, QuicTransport } from '../../lib/index.js';
import { pastHandshake, tagged, untag } from '../helpers/datagrams.js';
import { connect, startServer, within } from '../helpers/pair.js';

/** Connects, runs `queue` on the client before the handshake, and returns what the server reads. */
async function arrivalOrder(
  server: QuicServer,
  expected: number,
  queue: (client: QuicTransport) => Promise<void>,
): Promise<string[]> {
  const accepted = server.accept();
  const client = connect(server);
  try {
    await queue(client);
    assert.equal(client.datagrams.maxDatagramSize, 0, 'queued before the handshake completed');
    await within(10_000, client.ready, 'ready');
    const session = await within(10_000, accepted, 'accept');
    assert.ok(session);
    const reader = session.datagrams.readable.getReader();
    const got: string[] = [];
    for (let i = 0; i < expected; i++) {
      const { tag, index } = untag((await within(5000, reader.read(), `datagram ${i}`)).value as Uint8Array);
      got.push(`${String.fromCharCode(tag)}${index}`);
    }
    await pastHandshake(client, session);
    return got;
  } finally {
    client.close();
  }
}

/** Writes `n` datagrams tagged `tag` (a letter) without waiting for them to be sent. */
async function writeSome(writable: WritableStream<Uint8Array>, tag: string, n: number): Promise<void> {
  const writer = writable.getWriter();
  for (let i = 0; i < n; i++) await writer.write(tagged(tag.charCodeAt(0), i));
  writer.releaseLock();
}

const range = (tag: string, n: number) => Array.from({ length: n }, (_, i) => `${tag}${i}`);

describe('datagram sendOrder', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('datagrams of a higher sendOrder are sent first, though written later', async () => {
    const got = await arrivalOrder(server, 20, async (client) => {
      const low = client.datagrams.createWritable({ sendOrder: 0 });
      const high = client.datagrams.createWritable({ sendOrder: 1 });
      await writeSome(low, 'l', 10);
      await writeSome(high, 'h', 10);
    });
    assert.equal(got[0], 'h0', `first to arrive: ${got.join(' ')}`);
    assert.deepEqual(got, [...range('h', 10), ...range('l', 10)]);
  });

  test('changing a writable’s sendOrder applies to what it writes next', async () => {
    const got = await arrivalOrder(server, 15, async (client) => {
      const a = client.datagrams.createWritable({ sendOrder: 1 });
      const b = client.datagrams.writable; // sendOrder 0
      await writeSome(b, 'b', 5);
      await writeSome(a, 'a', 5);
      b.sendOrder = 2;
      await writeSome(b, 'c', 5);
    });
    assert.deepEqual(got, [...range('c', 5), ...range('a', 5), ...range('b', 5)]);
  });

  test('equal sendOrder keeps write order across writables; a negative one goes last', async () => {
    const got = await arrivalOrder(server, 12, async (client) => {
      const x = client.datagrams.createWritable();
      const y = client.datagrams.createWritable();
      const z = client.datagrams.createWritable({ sendOrder: -1 });
      const wx = x.getWriter();
      const wy = y.getWriter();
      const wz = z.getWriter();
      for (let i = 0; i < 4; i++) {
        await wz.write(tagged('z'.charCodeAt(0), i));
        await wx.write(tagged('x'.charCodeAt(0), i));
        await wy.write(tagged('y'.charCodeAt(0), i));
      }
    });
    assert.deepEqual(got, ['x0', 'y0', 'x1', 'y1', 'x2', 'y2', 'x3', 'y3', ...range('z', 4)]);
  });
});
