/**
 * A close made right after `ready`, while the client's handshake is not yet confirmed (the
 * server's HANDSHAKE_DONE not yet processed), and the event loop is busy for a moment. quiche 0.30
 * would then ignore every packet and send only Handshake probes without the close, so the client
 * holds the close back until the handshake looks confirmed (binding/src/connection.rs).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { connectPair, startServer, within } from '../helpers/pair.js';
import { until } from '../helpers/poll.js';

const IDLE = 3000;

/** UDP sockets open in this process. */
function udpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

test('a close right after ready reaches the server, and the client lets its socket go', async () => {
  const server = await startServer({ maxIdleTimeout: IDLE });
  try {
    const before = udpSockets();
    const { client, session } = await connectPair(server, { maxIdleTimeout: IDLE });
    client.close({ closeCode: 7, reason: 'bye' });
    // Synchronous work right after close() (10 ms, longer than a loopback PTO): the client's
    // PTO timer is then due before the flush that would send the close.
    const end = performance.now() + 10;
    while (performance.now() < end);
    const outcome = await within(
      IDLE + 2000,
      session.closed.then(
        (info) => info,
        (e: unknown) => e,
      ),
      'server side end',
    );
    assert.deepEqual(outcome, { closeCode: 7, reason: 'bye' });
    await until(1000, () => udpSockets() <= before, 'client socket closed');
  } finally {
    await server.close();
  }
});

test('a session aborted through its signal right after ready closes at the server too', async () => {
  // The abort closes the connection at the transport level (not an application close): quiche
  // sends that in a Handshake packet before the handshake is confirmed, which a server that has
  // confirmed it can no longer read. The close waits for the handshake like an application's.
  const server = await startServer({ maxIdleTimeout: IDLE });
  try {
    const abort = new AbortController();
    const { client, session } = await connectPair(server, { maxIdleTimeout: IDLE, signal: abort.signal });
    abort.abort(new Error('stop'));
    await assert.rejects(client.closed, { code: 'ERR_QUIC_ABORTED' });
    // Well before the idle timeout, which is how the server would otherwise learn of it.
    const info = await within(IDLE / 2, session.closed, 'server side end');
    assert.equal(info.closeCode, 0);
  } finally {
    await server.close();
  }
});
