/**
 * `quichex:datagram:drop` (node:diagnostics_channel): every datagram the session drops is
 * published as `{ session, direction, reason, count }`, and the counts add up to the stats.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import type { QuicServer } from '../../lib/index.js';
import { DropRecorder, pastHandshake, spin, statsOf, tagged, waitUntil } from '../helpers/datagrams.js';
import { connectPair, startServer, within } from '../helpers/pair.js';

describe('quichex:datagram:drop', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ datagrams: { incomingMaxBufferedDatagrams: 4 } });
  });
  after(() => server.close());

  test('a too large datagram: outgoing, too-large, count 1, on the writing session', async () => {
    const drops = new DropRecorder();
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      const writer = client.datagrams.writable.getWriter();
      await writer.write(new Uint8Array(client.datagrams.maxDatagramSize + 1));
      const e = await within(
        5000,
        drops.next((e) => e.session === client),
        'drop event',
      );
      assert.deepEqual(e, { session: client, direction: 'outgoing', reason: 'too-large', count: 1 });
      assert.equal(drops.of(session).length, 0);
    } finally {
      drops.close();
      client.close();
    }
  });

  test('a full incoming queue: incoming, queue-full, counts that add up to droppedIncoming', async () => {
    const drops = new DropRecorder();
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < 20; i++) await writer.write(tagged(1, i));
      await waitUntil(
        10_000,
        async () => {
          const [c, s] = await statsOf(client, session);
          return (
            s.datagramsReceived + c.datagrams.lostOutgoing >= 20 &&
            s.datagrams.droppedIncoming === s.datagramsReceived - 4
          );
        },
        'all in, all but 4 dropped',
      );
      const events = drops.of(session);
      assert.ok(events.length > 0);
      for (const e of events) {
        assert.equal(e.direction, 'incoming');
        assert.equal(e.reason, 'queue-full');
        assert.ok(Number.isInteger(e.count) && e.count > 0, `count ${e.count}`);
      }
      assert.equal(drops.total(session, 'queue-full'), (await session.getStats()).datagrams.droppedIncoming);
      assert.equal(drops.of(client).length, 0);
    } finally {
      drops.close();
      client.close();
    }
  });

  test('expired both ways: incoming and outgoing, reason expired', async () => {
    const drops = new DropRecorder();
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      client.datagrams.outgoingMaxAge = 1;
      const writer = client.datagrams.writable.getWriter();
      await writer.write(tagged(1, 0));
      await writer.write(tagged(1, 1));
      spin(5); // older than 1 ms by the flush at the end of this turn
      const out = await within(
        5000,
        drops.next((e) => e.session === client),
        'outgoing drop',
      );
      assert.deepEqual(out, { session: client, direction: 'outgoing', reason: 'expired', count: 2 });

      client.datagrams.outgoingMaxAge = null;
      session.datagrams.incomingMaxAge = 5;
      await writer.write(tagged(1, 2));
      await waitUntil(10_000, async () => (await session.getStats()).datagramsReceived === 1, 'arrived');
      await sleep(30); // let it grow older than 5 ms unread
      void session.datagrams.readable
        .getReader()
        .read()
        .catch(() => {});
      const incoming = await within(
        5000,
        drops.next((e) => e.session === session),
        'incoming drop',
      );
      assert.deepEqual(incoming, { session, direction: 'incoming', reason: 'expired', count: 1 });
    } finally {
      drops.close();
      client.close();
    }
  });

  test('after unsubscribing nothing more is recorded', async () => {
    const drops = new DropRecorder();
    drops.close();
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      await client.datagrams.writable.getWriter().write(new Uint8Array(client.datagrams.maxDatagramSize + 1));
      assert.equal((await client.getStats()).datagrams.tooLargeOutgoing, 1);
      assert.equal(drops.events.length, 0);
    } finally {
      client.close();
    }
  });
});
