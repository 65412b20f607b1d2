/**
 * The incoming datagram queue: at most `incomingMaxBufferedDatagrams` wait for the reader (a
 * full queue drops the oldest), and one older than `incomingMaxAge` when read is dropped. Both
 * drops are counted in `getStats().datagrams`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn, setTimeout as sleep } from 'node:timers/promises';
import type { QuicServer } from '../../lib/index.js';
import { pastHandshake, statsOf, tagged, untag, waitUntil } from '../helpers/datagrams.js';
import { connectPair, startServer, within } from '../helpers/pair.js';

const DATA = 1;
const MARKER = 9;

describe('incoming datagram queue', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ datagrams: { incomingMaxBufferedDatagrams: 16 } });
  });
  after(() => server.close());

  test('a reader that falls behind gets the newest 16; the older ones are dropped and counted', async () => {
    const { client, session } = await connectPair(server);
    try {
      assert.equal(session.datagrams.incomingMaxBufferedDatagrams, 16);
      await pastHandshake(client, session);
      const SENT = 200;
      const writer = client.datagrams.writable.getWriter();
      // The queue takes 1024 before a write waits: these all resolve at once.
      for (let i = 0; i < SENT; i++) await writer.write(tagged(DATA, i));

      // Nobody reads. Wait until every datagram has arrived or been declared lost, and the
      // session has taken them from quiche (what it drops then is counted).
      await waitUntil(
        10_000,
        async () => {
          const [c, s] = await statsOf(client, session);
          return (
            c.datagramsSent === SENT &&
            s.datagramsReceived + c.datagrams.lostOutgoing >= SENT &&
            s.datagrams.droppedIncoming === s.datagramsReceived - 16
          );
        },
        'all datagrams in, all but 16 dropped',
        async () => (await statsOf(client, session)).map((x) => ({ ...x.datagrams, received: x.datagramsReceived })),
      );
      const [c, s] = await statsOf(client, session);
      const received = s.datagramsReceived;
      assert.ok(received > 16, `${received} received`);

      const reader = session.datagrams.readable.getReader();
      const got: number[] = [];
      for (let i = 0; i < 16; i++) {
        const { value } = await within(5000, reader.read(), `queued datagram ${i}`);
        const d = untag(value as Uint8Array);
        assert.equal(d.tag, DATA);
        got.push(d.index);
      }
      // The queue is now empty: the next datagram read is one sent after.
      await writer.write(tagged(MARKER, 0));
      const next = await within(5000, reader.read(), 'marker');
      assert.equal(untag(next.value as Uint8Array).tag, MARKER, 'only 16 were kept');

      if (received === SENT) {
        // Nothing lost: the 16 kept are the newest, in arrival (here: send) order.
        assert.deepEqual(
          got,
          Array.from({ length: 16 }, (_, i) => SENT - 16 + i),
        );
      } else {
        assert.ok(c.datagrams.lostOutgoing > 0, 'a datagram that never arrived is counted lost');
        for (const index of got) assert.ok(index >= SENT - 16 - (SENT - received), `${index} is not among the newest`);
      }
      const final = (await session.getStats()).datagrams;
      assert.equal(final.droppedIncoming, received - 16);
      assert.ok(SENT - 16 >= final.droppedIncoming, 'sent − delivered ≥ dropped');
      assert.equal(final.expiredIncoming, 0);
    } finally {
      client.close();
    }
  });

  test('lowering incomingMaxBufferedDatagrams at runtime drops the oldest queued at once', async () => {
    const { client, session } = await connectPair(server);
    try {
      session.datagrams.incomingMaxBufferedDatagrams = 64;
      await pastHandshake(client, session);
      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < 40; i++) await writer.write(tagged(DATA, i));
      await waitUntil(10_000, async () => (await session.getStats()).datagramsReceived === 40, 'all 40 in');
      await nextTurn(); // the turn that took them in from quiche is over
      assert.equal((await session.getStats()).datagrams.droppedIncoming, 0);

      session.datagrams.incomingHighWaterMark = 10;
      assert.equal(session.datagrams.incomingMaxBufferedDatagrams, 10);
      assert.equal((await session.getStats()).datagrams.droppedIncoming, 30);

      const reader = session.datagrams.readable.getReader();
      const got: number[] = [];
      for (let i = 0; i < 10; i++)
        got.push(untag((await within(5000, reader.read(), 'read')).value as Uint8Array).index);
      assert.deepEqual(
        got,
        Array.from({ length: 10 }, (_, i) => 30 + i),
      );
    } finally {
      client.close();
    }
  });

  test('datagrams older than incomingMaxAge when read are dropped and counted in expiredIncoming', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      session.datagrams.incomingMaxAge = 20;
      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < 10; i++) await writer.write(tagged(DATA, i));
      await waitUntil(10_000, async () => (await session.getStats()).datagramsReceived === 10, 'all 10 in');
      // Age is the point here: let them grow older than 20 ms unread.
      await sleep(60);

      const reader = session.datagrams.readable.getReader();
      const pending = reader.read();
      // The read found only stale datagrams: it drops them and waits for a fresh one.
      await waitUntil(5000, async () => (await session.getStats()).datagrams.expiredIncoming === 10, 'expired');
      session.datagrams.incomingMaxAge = null;
      await writer.write(tagged(MARKER, 0));
      const { value } = await within(5000, pending, 'fresh datagram');
      assert.equal(untag(value as Uint8Array).tag, MARKER);

      const s = (await session.getStats()).datagrams;
      assert.equal(s.expiredIncoming, 10);
      assert.equal(s.droppedIncoming, 0);
    } finally {
      client.close();
    }
  });

  test('datagrams read within incomingMaxAge are delivered', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      session.datagrams.incomingMaxAge = 10_000;
      const reader = session.datagrams.readable.getReader();
      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < 10; i++) await writer.write(tagged(DATA, i));
      const got = new Set<number>();
      for (let i = 0; i < 10; i++)
        got.add(untag((await within(5000, reader.read(), 'read')).value as Uint8Array).index);
      assert.equal(got.size, 10);
      assert.equal((await session.getStats()).datagrams.expiredIncoming, 0);
    } finally {
      client.close();
    }
  });
});
