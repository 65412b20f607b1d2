/**
 * Datagrams at the end of a session: a clean close ends the readables (on both sides), a
 * failure errors them; writables and waiting writes reject with how the session ended.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer } from '../../lib/index.js';
import { pastHandshake, tagged, untag } from '../helpers/datagrams.js';
import { connect, connectPair, startServer, within } from '../helpers/pair.js';

function hasCode(code: string): (e: unknown) => boolean {
  return (e) => {
    assert.ok(e instanceof QuicTransportError, `expected QuicTransportError, got ${String(e)}`);
    assert.equal(e.code, code);
    return true;
  };
}

describe('datagrams at the end of a session', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('after client.close() the readables end on both sides and writes reject', async () => {
    const { client, session } = await connectPair(server);
    try {
      await pastHandshake(client, session);
      const clientReader = client.datagrams.readable.getReader();
      const serverReader = session.datagrams.readable.getReader();
      const writer = client.datagrams.writable.getWriter();
      const serverWriter = session.datagrams.writable.getWriter();
      await writer.write(tagged(1, 0));
      assert.equal(untag((await within(5000, serverReader.read(), 'read')).value as Uint8Array).index, 0);
      const pendingRead = clientReader.read();

      client.close({ closeCode: 7, reason: 'done' });
      assert.deepEqual(await within(5000, pendingRead, 'pending read'), { value: undefined, done: true });
      assert.deepEqual(await clientReader.read(), { value: undefined, done: true });
      await assert.rejects(writer.write(tagged(1, 1)), hasCode('ERR_QUIC_SESSION_CLOSED'));
      assert.throws(() => client.datagrams.createWritable(), hasCode('ERR_QUIC_SESSION_CLOSED'));
      assert.equal(client.datagrams.maxDatagramSize, 0);

      assert.deepEqual(await within(5000, serverReader.read(), 'server read at the end'), {
        value: undefined,
        done: true,
      });
      await within(5000, session.closed, 'server closed');
      await assert.rejects(serverWriter.write(tagged(1, 2)), (e: unknown) => {
        hasCode('ERR_QUIC_SESSION_CLOSED')(e);
        assert.equal((e as QuicTransportError).closeCode, 7);
        return true;
      });
      // The counters outlive the session.
      assert.equal((await client.getStats()).datagramsSent, 1);
      assert.equal((await session.getStats()).datagramsReceived, 1);
    } finally {
      client.close();
    }
  });

  test('closing before ready rejects a write waiting for room and errors the readable', async () => {
    // A server of its own: nothing this client leaves behind can reach another test's accept().
    const own = await startServer();
    const client = connect(own, { datagrams: { outgoingMaxBufferedDatagrams: 1 } });
    try {
      const writer = client.datagrams.writable.getWriter();
      await writer.write(tagged(1, 0));
      const waiting = writer.write(tagged(1, 1));
      const pendingRead = client.datagrams.readable.getReader().read();
      client.close();
      // Closing before the handshake completes is a failure, not a clean end.
      await assert.rejects(within(5000, waiting, 'waiting write'), hasCode('ERR_QUIC_SESSION_CLOSED'));
      await assert.rejects(client.ready, hasCode('ERR_QUIC_SESSION_CLOSED'));
      await assert.rejects(within(5000, pendingRead, 'pending read'), hasCode('ERR_QUIC_SESSION_CLOSED'));
    } finally {
      client.close();
      await own.close();
    }
  });

  test('a failed session errors the readable with its error', async () => {
    const controller = new AbortController();
    const { client, session } = await connectPair(server, { signal: controller.signal });
    try {
      // A close made before the client confirmed the handshake may never reach the server
      // (see session/close.test.ts): the peer's side is only checked past it.
      await pastHandshake(client, session);
      const reader = client.datagrams.readable.getReader();
      const pendingRead = reader.read();
      const writer = client.datagrams.writable.getWriter();
      controller.abort(new Error('enough'));
      await assert.rejects(within(5000, pendingRead, 'pending read'), hasCode('ERR_QUIC_ABORTED'));
      await assert.rejects(writer.write(tagged(1, 0)), hasCode('ERR_QUIC_ABORTED'));
      // The peer learns of it from the CONNECTION_CLOSE: its readable ends, one way or the other.
      await within(
        5000,
        session.datagrams.readable
          .getReader()
          .read()
          .catch(() => ({ done: true })),
        'server readable ends',
      );
    } finally {
      client.close();
    }
  });

  test('a session closed by the server ends the client readable', async () => {
    const { client, session } = await connectPair(server);
    try {
      const reader = client.datagrams.readable.getReader();
      const writer = client.datagrams.writable.getWriter();
      const pendingRead = reader.read();
      session.close({ closeCode: 3, reason: 'bye' });
      assert.deepEqual(await within(5000, pendingRead, 'client read'), { value: undefined, done: true });
      await assert.rejects(writer.write(tagged(1, 0)), (e: unknown) => {
        hasCode('ERR_QUIC_SESSION_CLOSED')(e);
        assert.equal((e as QuicTransportError).closeCode, 3);
        return true;
      });
    } finally {
      client.close();
    }
  });

  test('readable and writable first touched after the end are closed and errored, not throwing', async () => {
    const { client } = await connectPair(server);
    client.close({ closeCode: 4, reason: 'done' });
    await client.closed;
    const { done } = await client.datagrams.readable.getReader().read();
    assert.equal(done, true);
    await assert.rejects(client.datagrams.writable.getWriter().write(tagged(1, 0)), hasCode('ERR_QUIC_SESSION_CLOSED'));
    assert.throws(() => client.datagrams.createWritable(), hasCode('ERR_QUIC_SESSION_CLOSED'));
  });
});
