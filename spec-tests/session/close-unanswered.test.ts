/**
 * A client that closes after its Initial left but before anything came back. quiche closes such a
 * connection without a word (it has processed no packet), which would leave the server holding a
 * half-open connection until its handshake timeout; so the client holds the close until the
 * server's first answer arrives, then closes (binding/src/connection.rs).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { test } from 'node:test';
import { QuicTransport, QuicTransportError } from '../../lib/index.js';
import { PROTOCOL, startServer, within } from '../helpers/pair.js';
import { until } from '../helpers/poll.js';

/** The server gives up a handshake only after this long: the test must end well before. */
const SERVER_HANDSHAKE_TIMEOUT = 10_000;
/** What comes back from the server waits this long in the relay. */
const DELAY_MS = 300;
/**
 * The clients' RTT estimate before any sample: a close waits for the first answer for 4 of
 * them (1 s), well beyond DELAY_MS and any stall of a busy test machine.
 */
const INITIAL_RTT = 250;

/** A UDP relay on loopback to `port`, which holds each datagram coming back for `DELAY_MS`. */
async function delayingRelay(port: number): Promise<{ port: number; close: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  const timers = new Set<NodeJS.Timeout>();
  let client: dgram.RemoteInfo | undefined;
  socket.on('message', (msg, from) => {
    if (from.port !== port) {
      client = from;
      socket.send(msg, port, '127.0.0.1');
    } else if (client) {
      const to = client;
      const timer = setTimeout(() => {
        timers.delete(timer);
        socket.send(msg, to.port, to.address);
      }, DELAY_MS);
      timers.add(timer);
    }
  });
  return {
    port: socket.address().port,
    close: () => {
      for (const timer of timers) clearTimeout(timer);
      return new Promise((resolve) => socket.close(resolve));
    },
  };
}

/** UDP sockets open in this process. */
function udpSockets(): number {
  return process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
}

/** The server side of the next session the server starts (before its handshake completes). */
function nextServerSession(): Promise<QuicTransport> {
  return new Promise((resolve) => {
    const onOpen = (message: unknown) => {
      const { session, side } = message as { session: QuicTransport; side: string };
      if (side !== 'server') return;
      unsubscribe('quichex:session:open', onOpen);
      resolve(session);
    };
    subscribe('quichex:session:open', onOpen);
  });
}

test('with nothing listening (ICMP port unreachable) the client lets its socket go at once', async () => {
  const before = udpSockets();
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((resolve) => probe.bind(0, '127.0.0.1', resolve));
  const port = probe.address().port;
  await new Promise<void>((resolve) => probe.close(resolve));
  const client = new QuicTransport(`quic://127.0.0.1:${port}`, {
    protocols: [PROTOCOL],
    dangerouslyAcceptAnyCertificate: true,
    initialRtt: INITIAL_RTT,
  });
  await assert.rejects(client.closed, (e: unknown) => (e as QuicTransportError).code === 'ERR_QUIC_CONNECTION_REFUSED');
  // Waiting for an answer no one will send would hold the socket for 4 initial RTTs (1 s).
  await until(600, () => udpSockets() <= before, 'client socket closed');
});

test('a client that closes before the server answered still tells the server', async () => {
  const server = await startServer({ handshakeTimeout: SERVER_HANDSHAKE_TIMEOUT });
  const relay = await delayingRelay(server.address.port);
  try {
    const opened = nextServerSession();
    const client = new QuicTransport(`quic://127.0.0.1:${relay.port}`, {
      protocols: [PROTOCOL],
      serverCertificateHashes: server.certificateHashes,
      initialRtt: INITIAL_RTT,
    });
    const session = await within(2000, opened, 'the server sees the connection');
    // The server's answer is on its way back, held in the relay: the client has heard nothing.
    client.close({ closeCode: 3, reason: 'changed my mind' });
    await assert.rejects(client.closed, (e: unknown) => (e as QuicTransportError).code === 'ERR_QUIC_SESSION_CLOSED');
    const outcome = await within(
      DELAY_MS + 2000,
      session.closed.then(
        () => 'closed cleanly',
        (e: unknown) => e,
      ),
      'the server side ends',
    );
    // An application's code cannot be sent before the handshake (RFC 9000 §10.2.3).
    assert.ok(outcome instanceof QuicTransportError, String(outcome));
    assert.equal(outcome.code, 'ERR_QUIC_SESSION_CLOSED');
    assert.match(outcome.message, /the peer closed the session during the handshake/);
  } finally {
    await relay.close();
    await server.close();
  }
});
