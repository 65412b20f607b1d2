/**
 * Cancellation and disposal: a client's `signal` option, `server.accept({ signal })`, and
 * `Symbol.asyncDispose` (`await using`) on transports and servers.
 */
import assert from 'node:assert/strict';
import diagnostics from 'node:diagnostics_channel';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { QuicTransportError, type QuicServer, type QuicTransport } from '../../lib/index.js';
import { confirmHandshake, connectConfirmed } from '../helpers/confirm.js';
import { connect, echo, echoText, startServer, within } from '../helpers/pair.js';
import { isPending } from '../helpers/poll.js';

/** Asserts that `promise` rejects with `ERR_QUIC_ABORTED` whose cause is `reason`. */
async function assertAborted(promise: Promise<unknown>, reason: unknown, what: string): Promise<void> {
  await assert.rejects(within(5000, promise, what), (e: unknown) => {
    assert.ok(e instanceof QuicTransportError, `${what}: ${String(e)}`);
    assert.equal(e.code, 'ERR_QUIC_ABORTED');
    assert.equal(e.source, 'session');
    assert.equal(e.cause, reason);
    return true;
  });
}

/** How a session ended: its close info, or the error `closed` rejected with. */
function ending(session: QuicTransport): Promise<unknown> {
  return session.closed.then(
    (info) => info,
    (e: unknown) => e,
  );
}

describe('client signal', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ handshakeTimeout: 1000 });
  });
  after(() => server.close());

  test('abort before ready: ready and closed reject with ERR_QUIC_ABORTED', async () => {
    const controller = new AbortController();
    const client = connect(server, { signal: controller.signal });
    const reason = new Error('user navigated away');
    controller.abort(reason);
    await assertAborted(client.ready, reason, 'ready');
    await assertAborted(client.closed, reason, 'closed');
    await assert.rejects(client.createBidirectionalStream(), { code: 'ERR_QUIC_ABORTED' });
  });

  test('abort during the handshake: the client fails and the server side ends too', async () => {
    const controller = new AbortController();
    const reason = new Error('mid-handshake');
    const serverSide = new Promise<QuicTransport>((resolve) => {
      const onOpen = (message: unknown) => {
        const { session, side } = message as { session: QuicTransport; side: string };
        if (side !== 'server') return;
        diagnostics.unsubscribe('quichex:session:open', onOpen);
        // The server has the client's Initial: abort while the handshake is under way.
        controller.abort(reason);
        resolve(session);
      };
      diagnostics.subscribe('quichex:session:open', onOpen);
    });
    const client = connect(server, { signal: controller.signal });
    await assertAborted(client.ready, reason, 'ready');
    await assertAborted(client.closed, reason, 'closed');
    const session = await within(5000, serverSide, 'server side opened');
    // Whether the client's close arrives or the handshake times out, the server side ends.
    const end = await within(5000, ending(session), 'server side end');
    assert.ok(end instanceof QuicTransportError, String(end));
    // It was never established, so accept() did not get it: the next client is the next session.
    const { client: next, session: nextSession } = await connectConfirmed(server);
    assert.notEqual(nextSession, session);
    next.close();
  });

  test('an already-aborted signal fails the client at once, before any I/O', async () => {
    const reason = new Error('too late');
    const client = connect(server, { signal: AbortSignal.abort(reason) });
    const outcome = client.ready.then(
      () => 'ready',
      (e: unknown) => e,
    );
    // Settled before the event loop could have done any I/O.
    await nextTurn();
    assert.equal(await isPending(outcome), false);
    await assertAborted(client.ready, reason, 'ready');
    await assertAborted(client.closed, reason, 'closed');
    assert.equal((await client.getStats()).packetsSent, 0);
  });

  test('abort after ready: closed rejects with ERR_QUIC_ABORTED and the server sees the end', async () => {
    const controller = new AbortController();
    const { client, session } = await connectConfirmed(server, { signal: controller.signal });
    echo(session);
    assert.equal(await echoText(client, 'before'), 'before');
    const reason = new Error('enough');
    controller.abort(reason);
    await assertAborted(client.closed, reason, 'closed');
    await client.ready; // stays resolved
    await within(5000, ending(session), 'server side end');
    await assert.rejects(client.createBidirectionalStream(), { code: 'ERR_QUIC_ABORTED' });
  });

  test('aborting after a clean close changes nothing', async () => {
    const controller = new AbortController();
    const { client } = await connectConfirmed(server, { signal: controller.signal });
    client.close({ closeCode: 5, reason: 'done' });
    controller.abort(new Error('late'));
    assert.deepEqual(await client.closed, { closeCode: 5, reason: 'done' });
  });

  test('signal must be an AbortSignal: TypeError naming options.signal', () => {
    for (const bad of [{}, 'abort', 1, null, new AbortController()]) {
      assert.throws(
        () => connect(server, { signal: bad as AbortSignal }),
        (e: unknown) => e instanceof TypeError && /options\.signal/.test(e.message),
        String(bad),
      );
    }
  });
});

describe('server.accept({ signal })', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('aborting rejects the wait with the reason; the session goes to the next accept()', async () => {
    const controller = new AbortController();
    const waiting = server.accept({ signal: controller.signal });
    assert.equal(await isPending(waiting, 10), true);
    const reason = new Error('stop waiting');
    controller.abort(reason);
    await assert.rejects(within(1000, waiting, 'abort'), (e: unknown) => e === reason);
    const client = connect(server);
    try {
      await within(5000, client.ready, 'ready');
      const session = await within(5000, server.accept(), 'accept');
      assert.ok(session);
      echo(session);
      assert.equal(await echoText(client, 'delivered'), 'delivered');
    } finally {
      client.close();
    }
  });

  test('a session that arrives while an aborted wait is pending goes to the next accept()', async () => {
    const controller = new AbortController();
    const aborted = server.accept({ signal: controller.signal });
    const waiting = server.accept();
    controller.abort();
    await assert.rejects(aborted, { name: 'AbortError' });
    const client = connect(server);
    try {
      const session = await within(5000, waiting, 'accept');
      assert.ok(session);
      echo(session);
      assert.equal(await echoText(client, 'second waiter'), 'second waiter');
    } finally {
      client.close();
    }
  });

  test('an already-aborted signal rejects at once, and takes no queued session', async () => {
    const queued = new Promise<void>((resolve) => {
      const onAccept = () => {
        diagnostics.unsubscribe('quichex:server:accept', onAccept);
        resolve();
      };
      diagnostics.subscribe('quichex:server:accept', onAccept);
    });
    const client = connect(server);
    try {
      await within(5000, queued, 'server queued the session');
      const reason = new Error('already');
      await assert.rejects(server.accept({ signal: AbortSignal.abort(reason) }), (e: unknown) => e === reason);
      const session = await within(5000, server.accept(), 'accept');
      assert.ok(session);
      echo(session);
      assert.equal(await echoText(client, 'still queued'), 'still queued');
    } finally {
      client.close();
    }
  });

  test('an invalid signal is a TypeError naming options.signal', async () => {
    for (const bad of [{}, 'x', 1]) {
      await assert.rejects(
        async () => server.accept({ signal: bad as unknown as AbortSignal }),
        (e: unknown) => e instanceof TypeError && /options\.signal/.test(e.message),
      );
    }
  });

  test('closing the server resolves a waiting accept({ signal }) with null', async () => {
    const own = await startServer();
    const controller = new AbortController();
    const waiting = own.accept({ signal: controller.signal });
    await own.close();
    assert.equal(await within(1000, waiting, 'accept after close'), null);
    controller.abort(); // too late to matter
  });
});

describe('Symbol.asyncDispose', () => {
  test('transports and servers have it', async () => {
    const server = await startServer();
    try {
      const client = connect(server);
      try {
        assert.equal(typeof client[Symbol.asyncDispose], 'function');
        assert.equal(typeof server[Symbol.asyncDispose], 'function');
      } finally {
        client.close();
      }
    } finally {
      await server.close();
    }
  });

  test('calling it on a transport closes it and waits for closed', async () => {
    const server = await startServer();
    try {
      const { client, session } = await connectConfirmed(server);
      await within(5000, client[Symbol.asyncDispose](), 'dispose');
      assert.equal(await isPending(client.closed), false);
      assert.deepEqual(await client.closed, { closeCode: 0, reason: '' });
      assert.deepEqual(await within(5000, session.closed, 'server side'), { closeCode: 0, reason: '' });
    } finally {
      await server.close();
    }
  });

  test('calling it on a transport that failed resolves (it does not throw)', async () => {
    const server = await startServer();
    try {
      const client = connect(server, { signal: AbortSignal.abort() });
      await within(5000, client[Symbol.asyncDispose](), 'dispose');
      await assert.rejects(client.closed, { code: 'ERR_QUIC_ABORTED' });
    } finally {
      await server.close();
    }
  });

  test('calling it on a server closes the server and its sessions', async () => {
    const server = await startServer();
    const { client } = await connectConfirmed(server);
    await within(5000, server[Symbol.asyncDispose](), 'dispose');
    assert.equal(await server.accept(), null);
    assert.deepEqual(await within(5000, client.closed, 'client closed'), { closeCode: 0, reason: 'server closing' });
  });

  test('await using closes both at the end of the block, the transport first', async () => {
    let outer: QuicServer | undefined;
    let inner: QuicTransport | undefined;
    let serverSide: QuicTransport | null | undefined;
    {
      await using server = await startServer();
      await using client = connect(server);
      outer = server;
      inner = client;
      serverSide = await within(5000, server.accept(), 'accept');
      assert.ok(serverSide);
      echo(serverSide);
      assert.equal(await echoText(client, 'scoped'), 'scoped');
    }
    assert.deepEqual(await within(1000, inner.closed, 'client closed'), { closeCode: 0, reason: '' });
    // Disposing the transport does not wait for the peer: the server was disposed right after and
    // closed its side itself, cleanly.
    const end = await within(5000, serverSide.closed, 'server side');
    assert.equal(end.closeCode, 0);
    assert.equal(await outer.accept(), null);
  });

  test('await using disposes when the block throws', async () => {
    let inner: QuicTransport | undefined;
    await assert.rejects(async () => {
      await using server = await startServer();
      await using client = connect(server);
      inner = client;
      const session = await within(5000, server.accept(), 'accept');
      assert.ok(session);
      await confirmHandshake(client, session);
      throw new Error('boom');
    }, /boom/);
    assert.ok(inner);
    assert.equal(await isPending(inner.closed), false);
  });
});
