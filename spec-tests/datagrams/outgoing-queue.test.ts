/**
 * The outgoing datagram queue: `write()` resolves at once while fewer than
 * `outgoingMaxBufferedDatagrams` are queued, else when its datagram is handed to QUIC;
 * datagrams written before `ready` leave after it; one older than `outgoingMaxAge` when it
 * would be handed over is dropped and counted in `expiredOutgoing`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { QuicServer, QuicTransport } from '../../lib/index.js';
import { pastHandshake, spin, tagged, untag, waitUntil } from '../helpers/datagrams.js';
import { connect, connectPair, startServer, within } from '../helpers/pair.js';

const DATA = 1;
const MARKER = 9;

/** Whether each promise has settled, after one turn of the event loop. */
async function settledAfterATurn(promises: Promise<unknown>[]): Promise<boolean[]> {
  const settled = promises.map(() => false);
  promises.forEach((p, i) =>
    p.then(
      () => (settled[i] = true),
      () => (settled[i] = true),
    ),
  );
  await nextTurn();
  return settled;
}

/** A client not yet connected and the server's side of it, once accepted. */
function connecting(server: QuicServer, options: Parameters<typeof connect>[1]) {
  const accepted = server.accept();
  const client = connect(server, options);
  let ready = false;
  client.ready.then(
    () => (ready = true),
    () => {},
  );
  return {
    client,
    isReady: () => ready,
    session: async (): Promise<QuicTransport> => {
      await within(10_000, client.ready, 'ready');
      const session = await within(10_000, accepted, 'accept');
      assert.ok(session);
      return session;
    },
  };
}

describe('outgoing datagram queue', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('with outgoingMaxBufferedDatagrams 4, four writes resolve at once and the fifth waits for ready', async () => {
    const pending = connecting(server, { datagrams: { outgoingMaxBufferedDatagrams: 4 } });
    const { client } = pending;
    try {
      assert.equal(client.datagrams.outgoingMaxBufferedDatagrams, 4);
      assert.equal(client.datagrams.outgoingHighWaterMark, 4);
      const writer = client.datagrams.writable.getWriter();
      const writes = Array.from({ length: 5 }, (_, i) => writer.write(tagged(DATA, i)));
      // A handshake takes several turns of the loop (bind, Initial, reply): one is not enough.
      const settled = await settledAfterATurn(writes);
      assert.equal(pending.isReady(), false, 'the handshake is still under way');
      assert.deepEqual(settled, [true, true, true, true, false]);

      const session = await pending.session();
      await within(5000, writes[4], 'the fifth write, once its datagram is handed over');
      const reader = session.datagrams.readable.getReader();
      const got: number[] = [];
      for (let i = 0; i < 5; i++)
        got.push(untag((await within(5000, reader.read(), 'read')).value as Uint8Array).index);
      assert.deepEqual(got, [0, 1, 2, 3, 4], 'written before ready, sent after it, in order');
      await pastHandshake(client, session);
    } finally {
      client.close();
    }
  });

  test('setting outgoingMaxBufferedDatagrams at runtime changes when writes wait', async () => {
    const pending = connecting(server, {});
    const { client } = pending;
    try {
      assert.equal(client.datagrams.outgoingMaxBufferedDatagrams, 1024);
      client.datagrams.outgoingHighWaterMark = 2;
      assert.equal(client.datagrams.outgoingMaxBufferedDatagrams, 2);
      const writer = client.datagrams.writable.getWriter();
      const writes = Array.from({ length: 3 }, (_, i) => writer.write(tagged(DATA, i)));
      const settled = await settledAfterATurn(writes);
      assert.equal(pending.isReady(), false, 'the handshake is still under way');
      assert.deepEqual(settled, [true, true, false]);
      const session = await pending.session();
      await within(5000, writes[2], 'the third write');
      await pastHandshake(client, session);
    } finally {
      client.close();
    }
  });

  test('datagrams written before ready that are older than outgoingMaxAge by then are dropped', async () => {
    const pending = connecting(server, { datagrams: { outgoingMaxAge: 1 } });
    const { client } = pending;
    try {
      assert.equal(client.datagrams.outgoingMaxAge, 1);
      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < 3; i++) await writer.write(tagged(DATA, i));
      // Queued now; block the loop so that they are surely older than 1 ms when the handshake
      // completes (it needs the loop).
      spin(5);
      assert.equal(pending.isReady(), false);
      const session = await pending.session();
      await waitUntil(5000, async () => (await client.getStats()).datagrams.expiredOutgoing === 3, 'expired');
      await pastHandshake(client, session);
      await assertOnlyMarkerArrives(client, session, writer);
    } finally {
      client.close();
    }
  });

  test('a datagram queued longer than outgoingMaxAge after ready is dropped, not sent', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      client.datagrams.outgoingMaxAge = 1;
      const writer = client.datagrams.writable.getWriter();
      for (let i = 0; i < 3; i++) await writer.write(tagged(DATA, i));
      // They leave at the end of this turn: make the turn outlast their age.
      spin(5);
      await waitUntil(5000, async () => (await client.getStats()).datagrams.expiredOutgoing === 3, 'expired');
      await assertOnlyMarkerArrives(client, session, writer);
    } finally {
      client.close();
    }
  });
});

/** With ages off again, a marker sent now is the first datagram the server reads. */
async function assertOnlyMarkerArrives(
  client: QuicTransport,
  session: QuicTransport,
  writer: WritableStreamDefaultWriter<Uint8Array>,
): Promise<void> {
  client.datagrams.outgoingMaxAge = null;
  assert.equal(client.datagrams.outgoingMaxAge, null);
  const reader = session.datagrams.readable.getReader();
  await writer.write(tagged(MARKER, 0));
  const { value } = await within(5000, reader.read(), 'marker');
  assert.equal(untag(value as Uint8Array).tag, MARKER, 'an expired datagram arrived');
  const s = await session.getStats();
  assert.equal(s.datagramsReceived, 1);
  reader.releaseLock();
}
