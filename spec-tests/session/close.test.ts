import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicServer, QuicTransportError } from '../../lib/index.js';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PROTOCOL, connect, connectPair, echo, echoText, startServer, within } from '../helpers/pair.js';

describe('session close', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('the close code and reason reach the server', async () => {
    const { client, session } = await connectPair(server);
    client.close({ closeCode: 4242, reason: 'done here' });
    assert.deepEqual(await client.closed, { closeCode: 4242, reason: 'done here' });
    assert.deepEqual(await within(5000, session.closed, 'server closed'), { closeCode: 4242, reason: 'done here' });
    await within(5000, session.draining, 'draining');
  });

  test('the close code and reason reach the client', async () => {
    const { client, session } = await connectPair(server);
    session.close({ closeCode: 3, reason: 'bye' });
    assert.deepEqual(await within(5000, client.closed, 'client closed'), { closeCode: 3, reason: 'bye' });
  });

  test('opening a stream after the peer closed says how the session ended', async () => {
    const { client, session } = await connectPair(server);
    session.close({ closeCode: 9, reason: 'gone' });
    await within(5000, client.closed, 'client closed');
    await assert.rejects(client.createBidirectionalStream(), (e: unknown) => {
      assert.ok(e instanceof QuicTransportError);
      assert.equal(e.code, 'ERR_QUIC_SESSION_CLOSED');
      assert.equal(e.closeCode, 9);
      assert.equal(e.reason, 'gone');
      return true;
    });
  });

  test('closing right after ready never locks up the pump (regression)', async () => {
    // quiche 0.30 cannot send a close made before the client's handshake is confirmed (see
    // close-unconfirmed.test.ts); the client holds it back until then. Every server side must see
    // the close code, and the pump must stay responsive (it used to spin on ACK-only packets and
    // starve every other connection).
    const quick = await startServer({ maxIdleTimeout: 1000 });
    try {
      for (let i = 0; i < 30; i++) {
        const accepted = quick.accept();
        const client = connect(quick, { maxIdleTimeout: 1000 });
        await within(5000, client.ready, 'ready');
        if (i % 2 === 1) await nextTurn();
        client.close({ closeCode: 5, reason: 'bye' });
        assert.deepEqual(await client.closed, { closeCode: 5, reason: 'bye' });
        const session = await within(5000, accepted, 'accept');
        assert.ok(session);
        const end = await within(
          5000,
          session.closed.then(
            (info) => info,
            (e: unknown) => e,
          ),
          'server side end',
        );
        assert.deepEqual(end, { closeCode: 5, reason: 'bye' });
      }
      const { client, session } = await connectPair(quick);
      echo(session);
      assert.equal(await within(5000, echoText(client, 'responsive'), 'echo after'), 'responsive');
      client.close();
    } finally {
      await quick.close();
    }
  });

  test('closing errors every open stream of both sides', async () => {
    const { client, session } = await connectPair(server);
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1]));
    const reader = readable.getReader();
    const pending = reader.read().catch((e: unknown) => e);
    const serverSide = session.incomingBidirectionalStreams.getReader();
    const { value } = await within(5000, serverSide.read(), 'incoming');
    const serverRead = value!.readable.getReader();
    await serverRead.read();
    const serverPending = serverRead.read().catch((e: unknown) => e);

    client.close({ closeCode: 1, reason: 'x' });
    const local = await pending;
    assert.ok(local instanceof QuicTransportError);
    assert.equal(local.code, 'ERR_QUIC_SESSION_CLOSED');
    await assert.rejects(writer.write(new Uint8Array([2])), (e: unknown) => e instanceof QuicTransportError);
    const remote = await within(5000, serverPending, 'server stream error');
    assert.ok(remote instanceof QuicTransportError);
    assert.equal(remote.closeCode, 1);
    await assert.rejects(client.createBidirectionalStream(), { code: 'ERR_QUIC_SESSION_CLOSED' });
  });

  test('incoming stream readables end cleanly on a clean close', async () => {
    const { client, session } = await connectPair(server);
    const reader = session.incomingBidirectionalStreams.getReader();
    client.close();
    const { done } = await within(5000, reader.read(), 'incoming end');
    assert.equal(done, true);
  });

  test('an idle session times out with ERR_QUIC_IDLE_TIMEOUT', async () => {
    const quiet = await startServer({ maxIdleTimeout: 300 });
    try {
      const { client } = await connectPair(quiet, { maxIdleTimeout: 300 });
      const error = await within(
        5000,
        client.closed.then(
          () => null,
          (e: unknown) => e,
        ),
        'idle timeout',
      );
      assert.ok(error instanceof QuicTransportError);
      assert.equal(error.code, 'ERR_QUIC_IDLE_TIMEOUT');
    } finally {
      await quiet.close();
    }
  });

  test('close() before ready rejects ready and closed', async () => {
    const client = connect(server);
    client.close();
    await assert.rejects(client.ready, { code: 'ERR_QUIC_SESSION_CLOSED' });
    await assert.rejects(client.closed, { code: 'ERR_QUIC_SESSION_CLOSED' });
  });
});

describe('server accept before listen', () => {
  test('accept() and for await asked before listen() wait for the first session', async () => {
    const server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: [PROTOCOL] });
    try {
      const first = server.accept();
      const iterated = (async () => {
        for await (const session of server) return session;
        return null;
      })();
      await server.listen();
      const clients = [connect(server), connect(server)];
      const sessions = await within(5000, Promise.all([first, iterated]), 'sessions');
      assert.ok(sessions.every((s) => s !== null));
      for (const client of clients) client.close();
    } finally {
      await server.close();
    }
  });
});
