/**
 * Thousands of datagrams of every size out and back (RFC 9221 over `transport.datagrams`).
 * Datagrams are unreliable and unordered: what must hold is that every datagram received is
 * one that was sent, unchanged and at most once, and that each one missing is accounted for by
 * a counter of `getStats()` on one side or the other (lost on the wire, dropped, expired).
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QuicServer, QuicTransport, QuicTransportStats } from '../../lib/index.js';
import { indexOfSized, pastHandshake, sized, statsOf, waitUntil } from '../helpers/datagrams.js';
import { connectPair, startServer, within } from '../helpers/pair.js';

const COUNT = 3000;
/**
 * Pacing: the writer awaits every write, and with at most this many datagrams queued a write
 * waits until quiche takes one more (quiche's own queue drains only as fast as congestion
 * control and pacing let packets out). Without it, 3000 writes would all be queued in one turn
 * and leave as one burst: still correct, but more of it lost on a busy machine.
 */
const PACED = { outgoingMaxBufferedDatagrams: 32 };

/** What one side received: each datagram checked, counted once. */
class Received {
  readonly seen = new Set<number>();
  readonly errors: string[] = [];
  constructor(readonly max: number) {}

  add(d: Uint8Array): void {
    const index = indexOfSized(d, this.max);
    if (index === undefined || index >= COUNT) this.errors.push(`${d.length} bytes that were never sent`);
    else if (this.seen.has(index)) this.errors.push(`datagram ${index} twice`);
    else this.seen.add(index);
  }
}

/** What a receiver did with the DATAGRAM frames quiche took in: delivered, dropped or expired. */
function handled(delivered: number, stats: QuicTransportStats): number {
  return delivered + stats.datagrams.droppedIncoming + stats.datagrams.expiredIncoming;
}

describe('datagram echo', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ datagrams: PACED });
  });
  after(() => server.close());

  test(`${COUNT} datagrams of every size from 1 to maxDatagramSize arrive intact, and loss is counted`, async () => {
    const { client, session } = await connectPair(server, { datagrams: PACED });
    try {
      const max = client.datagrams.maxDatagramSize;
      assert.ok(max > 1000, `maxDatagramSize ${max}`);
      assert.equal(session.datagrams.maxDatagramSize, max, 'both sides use the same payload size');

      const atServer = new Received(max);
      const atClient = new Received(max);
      const echoing = echo(session, atServer);
      const reading = (async () => {
        for await (const d of client.datagrams.readable) atClient.add(d);
      })();

      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < COUNT; i++) await within(10_000, writer.write(sized(i, max)), `write ${i}`);

      // Once both readers have taken all quiche received and every loss is detected, the
      // counters must account for each datagram. Packets lost at the very end are detected by a
      // probe timeout: a few round trips on loopback.
      let c!: QuicTransportStats;
      let s!: QuicTransportStats;
      await waitUntil(
        20_000,
        async () => {
          [c, s] = await statsOf(client, session);
          return (
            c.datagramsSent === COUNT &&
            s.datagramsSent === atServer.seen.size &&
            handled(atServer.seen.size, s) === s.datagramsReceived &&
            handled(atClient.seen.size, c) === c.datagramsReceived &&
            COUNT - s.datagramsReceived <= c.datagrams.lostOutgoing &&
            s.datagramsSent - c.datagramsReceived <= s.datagrams.lostOutgoing
          );
        },
        'the counters account for every datagram',
        () => ({
          sent: COUNT,
          atServer: atServer.seen.size,
          atClient: atClient.seen.size,
          client: { ...c.datagrams, sent: c.datagramsSent, received: c.datagramsReceived },
          server: { ...s.datagrams, sent: s.datagramsSent, received: s.datagramsReceived },
        }),
      );

      assert.deepEqual(atServer.errors, []);
      assert.deepEqual(atClient.errors, []);
      for (const index of atClient.seen) assert.ok(atServer.seen.has(index), `${index} came back but never arrived`);
      assert.ok(atServer.seen.size <= COUNT);
      assert.ok(atClient.seen.size <= atServer.seen.size);
      // Nothing was too large or waited too long: only the wire or a full queue can lose one.
      for (const stats of [c, s]) {
        assert.equal(stats.datagrams.tooLargeOutgoing, 0);
        assert.equal(stats.datagrams.expiredOutgoing, 0);
        assert.equal(stats.datagrams.expiredIncoming, 0);
      }
      if (atServer.seen.size < COUNT) {
        assert.ok(c.datagrams.lostOutgoing + s.datagrams.droppedIncoming > 0, 'a missing datagram is counted');
      }
      if (atClient.seen.size < atServer.seen.size) {
        assert.ok(s.datagrams.lostOutgoing + c.datagrams.droppedIncoming > 0, 'a missing echo is counted');
      }
      // On loopback nearly everything arrives; a large loss would be a bug, not the network.
      assert.ok(atClient.seen.size >= COUNT * 0.9, `${atClient.seen.size} of ${COUNT} came back`);

      client.close();
      await within(5000, reading, 'client reader ends');
      await within(5000, echoing, 'server echo ends');
    } finally {
      client.close();
    }
  });

  test('a datagram of exactly maxDatagramSize bytes and an empty one both arrive', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      const max = client.datagrams.maxDatagramSize;
      const writer = client.datagrams.writable.getWriter();
      const reader = session.datagrams.readable.getReader();
      const big = sized(max - 1, max);
      assert.equal(big.length, max);
      await writer.write(big);
      await writer.write(new Uint8Array(0));
      const first = await within(5000, reader.read(), 'full-size datagram');
      assert.equal(indexOfSized(first.value as Uint8Array, max), max - 1);
      const second = await within(5000, reader.read(), 'empty datagram');
      assert.equal((second.value as Uint8Array).length, 0);
      const [c] = await statsOf(client, session);
      assert.equal(c.datagrams.tooLargeOutgoing, 0);
    } finally {
      client.close();
    }
  });

  test('a write copies the bytes: changing the buffer after write() changes nothing sent', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      const writer = client.datagrams.writable.getWriter();
      const reader = session.datagrams.readable.getReader();
      const buffer = new Uint8Array(64);
      for (let i = 0; i < 10; i++) {
        buffer.fill(i);
        await writer.write(buffer.subarray(i, 32 + i));
      }
      buffer.fill(255);
      for (let i = 0; i < 10; i++) {
        const { value } = await within(5000, reader.read(), `datagram ${i}`);
        assert.deepEqual(value, new Uint8Array(32).fill(i));
      }
    } finally {
      client.close();
    }
  });
});

/** Writes back every datagram `session` receives, after noting it in `received`. */
async function echo(session: QuicTransport, received: Received): Promise<void> {
  const writer = session.datagrams.writable.getWriter();
  for await (const d of session.datagrams.readable) {
    received.add(d);
    // The write copies the bytes; awaiting it paces the echo like the client.
    await writer.write(d).catch(() => {});
  }
}
