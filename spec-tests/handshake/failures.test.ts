/**
 * Handshakes that must fail, and fail with the right stable `code` on both `ready` and
 * `closed`, before the handshake timeout; plus the positive controls that show the same
 * set-ups succeed when nothing is wrong.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import {
  QuicServer,
  QuicTransport,
  QuicTransportError,
  generateCertificate,
  type QuicErrorCode,
  type QuicTransportOptions,
} from '../../lib/index.js';
import { PROTOCOL, connect, connectPair, echo, echoText, startServer, urlOf, within } from '../helpers/pair.js';

/** Long enough that a failure settling before it cannot be the timer's doing. */
const HANDSHAKE_TIMEOUT = 5000;

/** Asserts that `ready` and `closed` both reject with a `QuicTransportError` of `code`; returns ms taken. */
async function assertFails(client: QuicTransport, code: QuicErrorCode, limitMs: number): Promise<number> {
  const start = performance.now();
  const check = (e: unknown): true => {
    assert.ok(e instanceof QuicTransportError, `expected a QuicTransportError, got ${String(e)}`);
    assert.equal(e.code, code, `code (message: ${e.message})`);
    assert.equal(e.source, 'session');
    return true;
  };
  await within(limitMs, assert.rejects(client.ready, check), 'ready');
  await within(limitMs, assert.rejects(client.closed, check), 'closed');
  return performance.now() - start;
}

/** One echo round trip over a new bidirectional stream. */
async function roundTrip(client: QuicTransport, text: string): Promise<void> {
  assert.equal(await echoText(client, text), text);
}

/** Connects with `options`, echoes once, closes, and checks the clean close. */
async function assertConnects(server: QuicServer, url: string | URL, options: QuicTransportOptions): Promise<void> {
  const client = new QuicTransport(url, { protocols: [PROTOCOL], handshakeTimeout: HANDSHAKE_TIMEOUT, ...options });
  const [session] = await within(HANDSHAKE_TIMEOUT, Promise.all([server.accept(), client.ready]), 'handshake');
  assert.ok(session);
  assert.equal(client.protocol, PROTOCOL);
  echo(session);
  await roundTrip(client, `hello over ${url}`);
  client.close({ closeCode: 0, reason: 'done' });
  assert.deepEqual(await within(5000, client.closed, 'closed'), { closeCode: 0, reason: 'done' });
}

/** A port on 127.0.0.1 that nothing listens on (it was free a moment ago). */
async function freePort(): Promise<number> {
  const socket = dgram.createSocket('udp4');
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  const { port } = socket.address();
  await new Promise<void>((resolve) => socket.close(resolve));
  return port;
}

describe('handshake failures', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('a server certificate not signed by the given ca is rejected (ERR_QUIC_CERTIFICATE)', async () => {
    const other = generateCertificate(['localhost', '127.0.0.1']);
    const client = connect(server, {
      serverCertificateHashes: undefined,
      ca: other.cert,
      serverName: 'localhost',
      handshakeTimeout: HANDSHAKE_TIMEOUT,
    });
    await assertFails(client, 'ERR_QUIC_CERTIFICATE', HANDSHAKE_TIMEOUT - 1000);
  });

  test('a wrong pinned certificate hash is rejected (ERR_QUIC_CERTIFICATE)', async () => {
    const wrong = Uint8Array.from(server.certificateHashes[0].value, (b) => b ^ 0xff);
    const client = connect(server, {
      serverCertificateHashes: [{ algorithm: 'sha-256', value: wrong }],
      handshakeTimeout: HANDSHAKE_TIMEOUT,
    });
    await assertFails(client, 'ERR_QUIC_CERTIFICATE', HANDSHAKE_TIMEOUT - 1000);
  });

  test('nothing listening on the port: ERR_QUIC_CONNECTION_REFUSED, well before the timeout', async () => {
    const port = await freePort();
    const client = new QuicTransport(`quic://127.0.0.1:${port}`, {
      protocols: [PROTOCOL],
      dangerouslyAcceptAnyCertificate: true,
      handshakeTimeout: 10_000,
    });
    const ms = await assertFails(client, 'ERR_QUIC_CONNECTION_REFUSED', 5000);
    assert.ok(ms < 2000, `took ${Math.round(ms)} ms`);
  });

  test('a peer that never answers: ERR_QUIC_HANDSHAKE_TIMEOUT after handshakeTimeout', async () => {
    const sink = dgram.createSocket('udp4');
    const sizes: number[] = [];
    sink.on('message', (msg) => sizes.push(msg.length));
    sink.bind(0, '127.0.0.1');
    await once(sink, 'listening');
    try {
      const client = new QuicTransport(`quic://127.0.0.1:${sink.address().port}`, {
        protocols: [PROTOCOL],
        dangerouslyAcceptAnyCertificate: true,
        handshakeTimeout: 500,
      });
      const ms = await assertFails(client, 'ERR_QUIC_HANDSHAKE_TIMEOUT', 3000);
      assert.ok(ms >= 450 && ms < 2000, `took ${Math.round(ms)} ms`);
      // The client did try: its Initials are padded to at least 1200 bytes (RFC 9000 §14.1).
      assert.ok(sizes.length > 0, 'no packet reached the silent peer');
      assert.ok(
        sizes.every((n) => n >= 1200),
        `datagram sizes ${sizes.join(', ')}`,
      );
    } finally {
      sink.close();
    }
  });

  test('positive control: ca = the server certificate, serverName localhost', async () => {
    const { certificate } = server;
    assert.ok(certificate?.includes('-----BEGIN CERTIFICATE-----'));
    await assertConnects(server, urlOf(server), { ca: certificate, serverName: 'localhost' });
  });

  test('positive control: ca with the IP literal 127.0.0.1 as host and no serverName', async () => {
    await assertConnects(server, urlOf(server), { ca: server.certificate });
  });

  test('positive control: ca as a Buffer, URL given as a URL object', async () => {
    await assertConnects(server, new URL(urlOf(server)), { ca: Buffer.from(server.certificate as string) });
  });

  test('positive control: pinned certificate hash', async () => {
    await assertConnects(server, urlOf(server), { serverCertificateHashes: server.certificateHashes });
  });

  test('positive control: dangerouslyAcceptAnyCertificate', async () => {
    await assertConnects(server, urlOf(server), { dangerouslyAcceptAnyCertificate: true });
  });

  test('a ca whose certificate names another host is rejected (ERR_QUIC_CERTIFICATE)', async () => {
    // Trusted root, wrong name: the certificate names localhost, 127.0.0.1 and ::1 only.
    const client = connect(server, {
      serverCertificateHashes: undefined,
      ca: server.certificate,
      serverName: 'example.com',
      handshakeTimeout: HANDSHAKE_TIMEOUT,
    });
    await assertFails(client, 'ERR_QUIC_CERTIFICATE', HANDSHAKE_TIMEOUT - 1000);
  });
});

describe('ALPN', () => {
  let server: QuicServer;
  before(async () => {
    server = new QuicServer({ host: '127.0.0.1', port: 0, protocols: ['b'] });
    await server.listen();
  });
  after(() => server.close());

  test('no common protocol: ERR_QUIC_PROTOCOL_MISMATCH, and accept() never sees the session', async () => {
    const accepted = server.accept();
    const client = new QuicTransport(urlOf(server), {
      protocols: ['a'],
      serverCertificateHashes: server.certificateHashes,
      handshakeTimeout: HANDSHAKE_TIMEOUT,
    });
    await assertFails(client, 'ERR_QUIC_PROTOCOL_MISMATCH', HANDSHAKE_TIMEOUT - 1000);
    // The next session accept() delivers must be the good client's, not the failed one's.
    const good = new QuicTransport(urlOf(server), {
      protocols: ['x', 'b'],
      serverCertificateHashes: server.certificateHashes,
    });
    const session = await within(5000, accepted, 'accept');
    await within(5000, good.ready, 'good client ready');
    assert.ok(session);
    assert.equal(session.protocol, 'b');
    assert.equal(good.protocol, 'b');
    assert.equal(session.remoteAddress?.port, good.localAddress?.port);
    // A round trip first: closing the instant `ready` resolves is a separate bug (see
    // lifecycle/clean-exit.test.ts, 'close-on-ready').
    echo(session);
    await roundTrip(good, 'negotiated b');
    good.close();
    await within(5000, good.closed, 'good client closed');
  });

  test('the server picks its most preferred protocol that the client offers (RFC 7301 §3.2)', async () => {
    const both = new QuicServer({ host: '127.0.0.1', port: 0, protocols: ['first', 'second'] });
    await both.listen();
    try {
      const client = new QuicTransport(urlOf(both), {
        protocols: ['second', 'first'],
        serverCertificateHashes: both.certificateHashes,
      });
      const [session] = await within(5000, Promise.all([both.accept(), client.ready]), 'handshake');
      assert.ok(session);
      assert.equal(client.protocol, session.protocol);
      echo(session);
      await roundTrip(client, 'negotiated'); // not closing the instant `ready` resolves: see above
      client.close();
      await within(5000, client.closed, 'closed');
      assert.equal(client.protocol, 'first');
    } finally {
      await both.close();
    }
  });
});

describe('server limits and address validation', () => {
  test('maxConnections: 1 refuses a second client with ERR_QUIC_CONNECTION_REFUSED', async () => {
    const server = await startServer({ maxConnections: 1 });
    try {
      const { client: first, session } = await within(5000, connectPair(server), 'first client');
      echo(session);
      const second = connect(server, { handshakeTimeout: 3000 });
      await assertFails(second, 'ERR_QUIC_CONNECTION_REFUSED', 2500);
      // The connection that holds the slot is unaffected.
      await roundTrip(first, 'still here');
      first.close();
      await within(5000, first.closed, 'first closed');
    } finally {
      await server.close();
    }
  });

  test('a refused connection keeps no closing state: close() does not wait out its draining', async () => {
    // An RTT estimate of 300 ms before any sample: a refused connection that drained like an
    // accepted one would hold the socket open for three PTOs computed from it (about 2.8 s).
    const server = await startServer({ maxConnections: 1, initialRtt: 300 });
    let closing: Promise<void> | undefined;
    try {
      const { client: first } = await within(5000, connectPair(server), 'first client');
      await assertFails(connect(server, { handshakeTimeout: 3000 }), 'ERR_QUIC_CONNECTION_REFUSED', 2500);
      first.close();
      await within(5000, first.closed, 'first closed');
      // The accepted connection drains for three PTOs computed from loopback RTT samples.
      closing = server.close();
      await within(1000, closing, 'server.close() with a refused connection');
    } finally {
      await (closing ?? server.close());
    }
  });

  test('retry: true still accepts and echoes', async () => {
    const server = await startServer({ retry: true });
    try {
      for (let i = 0; i < 2; i++) {
        const { client, session } = await within(5000, connectPair(server), 'handshake with Retry');
        echo(session);
        await roundTrip(client, `through a Retry ${i}`);
        client.close();
        await within(5000, client.closed, 'closed');
      }
    } finally {
      await server.close();
    }
  });
});

describe('IPv6', () => {
  test('a server on ::1 accepts a client on quic://[::1]', async (t) => {
    let server: QuicServer;
    try {
      server = await startServer({ host: '::1' });
    } catch (e) {
      t.skip(`cannot bind ::1: ${(e as Error).message}`);
      return;
    }
    try {
      assert.equal(server.address.family, 'IPv6');
      assert.equal(server.address.address, '::1');
      assert.match(urlOf(server), /^quic:\/\/\[::1\]:\d+$/);
      await assertConnects(server, urlOf(server), { serverCertificateHashes: server.certificateHashes });
      // The generated certificate names ::1, so an IP-literal ca check passes too.
      await assertConnects(server, urlOf(server), { ca: server.certificate });
    } finally {
      await server.close();
    }
  });
});
