/** Clients of one process share a socket per server and options, and let it go with the last one. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QuicServer } from '../../lib/index.js';
import { connect, connectPair, echo, echoText, startServer, within } from '../helpers/pair.js';

describe('shared client sockets', () => {
  let server: QuicServer;

  before(async () => {
    server = await startServer();
    void (async () => {
      for await (const session of server) echo(session);
    })();
  });

  after(() => server.close());

  test('clients of the same server with the same options share one socket', async () => {
    const clients = Array.from({ length: 5 }, () => connect(server));
    await within(10_000, Promise.all(clients.map((c) => c.ready)), 'ready');
    const ports = new Set(clients.map((c) => c.localAddress?.port));
    assert.equal(ports.size, 1);
    // Every connection on the shared socket still gets its own replies.
    const replies = await Promise.all(clients.map((c, i) => echoText(c, `client ${i}`)));
    assert.deepEqual(
      replies,
      clients.map((_, i) => `client ${i}`),
    );
    for (const c of clients) c.close();
    await Promise.all(clients.map((c) => c.closed));
  });

  test('different options get different sockets', async () => {
    const a = connect(server);
    const b = connect(server, { maxIdleTimeout: 12_345 });
    await within(10_000, Promise.all([a.ready, b.ready]), 'ready');
    assert.notEqual(a.localAddress?.port, b.localAddress?.port);
    a.close();
    b.close();
  });

  test('closing one client leaves the others on the socket working', async () => {
    const { client: first } = await connectPair(server);
    const second = connect(server);
    await within(10_000, second.ready, 'second ready');
    assert.equal(first.localAddress?.port, second.localAddress?.port);
    first.close();
    await first.closed;
    assert.equal(await echoText(second, 'still here'), 'still here');
    second.close();
  });

  test('a client after the last one closed gets a fresh socket that works', async () => {
    const first = connect(server);
    await within(10_000, first.ready, 'ready');
    first.close();
    await first.closed;
    // The socket closes once the connection has drained; the next client must not wait on it.
    await new Promise((resolve) => setTimeout(resolve, 200));
    const next = connect(server);
    await within(10_000, next.ready, 'next ready');
    assert.equal(await echoText(next, 'again'), 'again');
    next.close();
  });
});
