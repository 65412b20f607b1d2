/**
 * `getStats()` of sessions and streams reports what really happened on the wire, and the
 * session's TLS/QUIC facts (protocol, SNI, certificates, trace id) are those of the handshake.
 */
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer, type QuicTransport, type QuicTransportStats } from '../../lib/index.js';
import { PROTOCOL, connect, connectPair, echo, nextIncoming, readAll, startServer, within } from '../helpers/pair.js';
import { confirmHandshake } from '../helpers/confirm.js';
import { isPending, until } from '../helpers/poll.js';

const MIB = 1024 * 1024;

/** Writes `payload` on a new bidi stream of `client` (echoed by the server) and reads it back. */
async function echoBytes(client: QuicTransport, payload: Uint8Array) {
  const stream = await client.createBidirectionalStream();
  const writing = (async () => {
    const writer = stream.writable.getWriter();
    await writer.write(payload);
    await writer.close();
  })();
  const back = await within(10_000, readAll(stream.readable), 'echo');
  await within(5000, writing, 'write');
  assert.equal(back.length, payload.length);
  return stream;
}

function assertCounters(s: QuicTransportStats): void {
  for (const [name, value] of Object.entries(s)) {
    if (name === 'minRtt' || name === 'maxRtt' || name === 'estimatedSendRate') {
      assert.ok(value === null || (typeof value === 'number' && value >= 0), `${name}: ${String(value)}`);
    } else if (name === 'atSendCapacity') assert.equal(typeof value, 'boolean');
    else if (name === 'datagrams') {
      for (const key of ['droppedIncoming', 'expiredIncoming', 'expiredOutgoing', 'lostOutgoing', 'tooLargeOutgoing'])
        assert.equal((value as Record<string, unknown>)[key], 0, `datagrams.${key}`);
    } else assert.ok(typeof value === 'number' && Number.isFinite(value) && value >= 0, `${name}: ${String(value)}`);
  }
}

describe('session stats', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('after a 1 MiB echo the counters show it', async () => {
    const { client, session } = await connectPair(server);
    try {
      echo(session);
      await echoBytes(client, new Uint8Array(MIB).fill(0x5a));
      // Both read in the same turn: no packet can move between the two snapshots.
      const [c, s] = await Promise.all([client.getStats(), session.getStats()]);
      assertCounters(c);
      assertCounters(s);
      for (const side of [c, s]) {
        assert.ok(side.bytesSent >= MIB, `bytesSent ${side.bytesSent}`);
        assert.ok(side.bytesReceived >= MIB, `bytesReceived ${side.bytesReceived}`);
        assert.ok(side.packetsSent > MIB / 1400, `packetsSent ${side.packetsSent}`);
        assert.ok(side.packetsReceived > MIB / 1400, `packetsReceived ${side.packetsReceived}`);
        assert.ok(side.smoothedRtt > 0, `smoothedRtt ${side.smoothedRtt}`);
        assert.ok(side.minRtt !== null && side.minRtt > 0, `minRtt ${side.minRtt}`);
        assert.ok(side.maxRtt !== null && side.minRtt <= side.maxRtt, `minRtt ${side.minRtt} maxRtt ${side.maxRtt}`);
        assert.ok(side.congestionWindow > 0, `congestionWindow ${side.congestionWindow}`);
        assert.ok(side.pathMtu >= 1200, `pathMtu ${side.pathMtu}`);
        assert.ok(side.bytesAcknowledged > 0 && side.bytesAcknowledged <= side.bytesSent, 'bytesAcknowledged');
        assert.equal(side.paths, 1);
        assert.equal(side.atSendCapacity, false);
        assert.equal(side.datagramsSent, 0);
        assert.equal(side.datagramsReceived, 0);
      }
      // What one side received the other sent; at most a few packets are still on their way.
      assert.ok(s.packetsReceived <= c.packetsSent, `server got ${s.packetsReceived} of ${c.packetsSent}`);
      assert.ok(s.packetsReceived >= c.packetsSent / 2, `server got ${s.packetsReceived} of ${c.packetsSent}`);
      assert.ok(c.packetsReceived <= s.packetsSent, `client got ${c.packetsReceived} of ${s.packetsSent}`);
      assert.ok(c.packetsReceived >= s.packetsSent / 2, `client got ${c.packetsReceived} of ${s.packetsSent}`);
      assert.ok(s.bytesReceived <= c.bytesSent, `server got ${s.bytesReceived} of ${c.bytesSent} bytes`);
      assert.ok(c.bytesReceived <= s.bytesSent, `client got ${c.bytesReceived} of ${s.bytesSent} bytes`);
    } finally {
      client.close();
    }
  });

  test('before any traffic the counters are zero, not missing', async () => {
    const accepted = server.accept();
    const client = connect(server);
    try {
      // Still resolving/binding: nothing has been sent yet.
      const s = await client.getStats();
      assertCounters(s);
      assert.equal(s.bytesSent, 0);
      assert.equal(s.packetsReceived, 0);
      assert.equal(s.minRtt, null);
      await within(5000, client.ready, 'ready');
      // Taken here so that the next test accepts its own session.
      await confirmHandshake(client, (await within(5000, accepted, 'accept')) as QuicTransport);
    } finally {
      client.close();
    }
  });

  test('after a clean close getStats() returns the last counters, not zeros', async () => {
    const { client, session } = await connectPair(server);
    echo(session);
    await echoBytes(client, new Uint8Array(64 * 1024));
    const live = await client.getStats();
    client.close();
    await client.closed;
    const first = await client.getStats();
    assert.ok(first.bytesSent >= live.bytesSent && first.bytesSent >= 64 * 1024, `bytesSent ${first.bytesSent}`);
    assert.ok(first.packetsReceived >= live.packetsReceived, 'packetsReceived');
    assert.ok(first.minRtt !== null && first.minRtt > 0, 'minRtt');
    await within(5000, session.closed, 'server closed');
  });

  test('after an idle timeout getStats() returns the counters read at the end, and they stay', async () => {
    const quiet = await startServer({ maxIdleTimeout: 300 });
    try {
      const { client, session } = await connectPair(quiet, { maxIdleTimeout: 300 });
      echo(session);
      await echoBytes(client, new Uint8Array(32 * 1024));
      const live = await client.getStats();
      const end = await within(
        5000,
        client.closed.then(
          () => null,
          (e: unknown) => e,
        ),
        'idle timeout',
      );
      assert.ok(end instanceof QuicTransportError && end.code === 'ERR_QUIC_IDLE_TIMEOUT', String(end));
      // The connection is released when `closed` settles on a timeout: this is the final snapshot.
      const last = await client.getStats();
      assert.ok(last.bytesSent >= live.bytesSent && last.bytesSent >= 32 * 1024, `bytesSent ${last.bytesSent}`);
      assert.ok(last.packetsSent >= live.packetsSent, 'packetsSent');
      assert.ok(last.smoothedRtt > 0, 'smoothedRtt');
      await new Promise((r) => setTimeout(r, 50));
      assert.deepEqual(await client.getStats(), last);
    } finally {
      await quiet.close();
    }
  });

  test('atSendCapacity is true while a writer waits for a peer that does not read', async () => {
    const tight = await startServer({ initialMaxStreamDataBidiRemote: 16 * 1024 });
    try {
      const { client, session } = await connectPair(tight);
      try {
        assert.equal((await client.getStats()).atSendCapacity, false);
        const { writable } = await client.createBidirectionalStream();
        const writer = writable.getWriter();
        const payload = new Uint8Array(MIB);
        const writing = (async () => {
          await writer.write(payload);
          await writer.close();
        })();
        await until(5000, async () => (await client.getStats()).atSendCapacity, 'atSendCapacity');
        assert.equal(await isPending(writing, 20), true, 'the write waits for the reader');
        // The server starts reading: the writer finishes and is no longer at capacity.
        const stream = await nextIncoming(session.incomingBidirectionalStreams);
        const received = await within(10_000, readAll(stream.readable), 'server read');
        assert.equal(received.length, MIB);
        await within(5000, writing, 'write');
        assert.equal((await client.getStats()).atSendCapacity, false);
      } finally {
        client.close();
      }
    } finally {
      await tight.close();
    }
  });
});

describe('stream stats', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('send stats count what was written, and bytesAcknowledged catches up once the stream is done', async () => {
    const { client, session } = await connectPair(server);
    try {
      echo(session);
      const size = 300_001;
      const { writable, readable } = await echoBytes(client, new Uint8Array(size).fill(1));
      const stats = await writable.getStats();
      assert.equal(stats.bytesWritten, size);
      assert.equal(stats.bytesSent, size);
      assert.ok(stats.bytesAcknowledged === null || stats.bytesAcknowledged === size, String(stats.bytesAcknowledged));
      const acked = await until(5000, async () => (await writable.getStats()).bytesAcknowledged, 'bytesAcknowledged');
      assert.equal(acked, size);
      assert.deepEqual(await readable.getStats(), { bytesReceived: size, bytesRead: size });
    } finally {
      client.close();
    }
  });

  test('send stats of an unfinished stream: written counts every byte, acknowledged stays null', async () => {
    const { client } = await connectPair(server);
    try {
      const writable = await client.createUnidirectionalStream();
      assert.deepEqual(await writable.getStats(), { bytesWritten: 0, bytesSent: 0, bytesAcknowledged: null });
      const writer = writable.getWriter();
      await writer.write(new Uint8Array(1000));
      await writer.write(new Uint8Array(234));
      await new Promise((r) => setImmediate(r));
      const stats = await writable.getStats();
      assert.equal(stats.bytesWritten, 1234);
      assert.ok(stats.bytesSent <= 1234 && stats.bytesSent >= 1233, `bytesSent ${stats.bytesSent}`);
      assert.equal(stats.bytesAcknowledged, null, 'no FIN yet: nothing is complete');
    } finally {
      client.close();
    }
  });

  test('receive stats: bytesReceived counts bytes waiting unread, bytesRead what the reader took', async () => {
    const { client, session } = await connectPair(server);
    try {
      const { readable, writable } = await client.createBidirectionalStream();
      const writer = writable.getWriter();
      await writer.write(new Uint8Array([1]));
      const theirs = await nextIncoming(session.incomingBidirectionalStreams);
      const reply = theirs.writable.getWriter();
      const size = 10_000;
      await reply.write(new Uint8Array(size).fill(9));
      await reply.close();
      // Nothing read yet: the bytes wait in the stream, counted as received only.
      await until(5000, async () => (await readable.getStats()).bytesReceived === size, 'bytes arrive');
      assert.deepEqual(await readable.getStats(), { bytesReceived: size, bytesRead: 0 });
      const reader = readable.getReader({ mode: 'byob' });
      const { value } = await within(5000, reader.read(new Uint8Array(4000)), 'read');
      const first = value?.byteLength ?? 0;
      assert.ok(first > 0 && first <= 4000);
      let stats = await readable.getStats();
      assert.equal(stats.bytesRead, first);
      assert.equal(stats.bytesReceived, size);
      assert.ok(stats.bytesReceived > stats.bytesRead);
      let total = first;
      for (;;) {
        const r = await within(5000, reader.read(new Uint8Array(4000)), 'read');
        if (r.done) break;
        total += r.value.byteLength;
      }
      assert.equal(total, size);
      stats = await readable.getStats();
      assert.deepEqual(stats, { bytesReceived: size, bytesRead: size });
      const theirStats = await theirs.readable.getStats();
      assert.equal(theirStats.bytesReceived, 1);
      assert.equal(theirStats.bytesRead, 0);
    } finally {
      client.close();
    }
  });
});

describe('session info', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('protocol, certificate chain, trace id, addresses and resumed', async () => {
    const { client, session } = await connectPair(server);
    try {
      await confirmHandshake(client, session);
      assert.equal(client.protocol, PROTOCOL);
      assert.equal(session.protocol, PROTOCOL);
      const chain = client.peerCertificateChain;
      assert.equal(chain.length, 1);
      assert.ok(chain[0] instanceof Uint8Array);
      const hash = createHash('sha256').update(chain[0]).digest();
      assert.deepEqual(new Uint8Array(hash), server.certificateHashes[0].value);
      assert.equal(Object.getPrototypeOf(chain[0]), Uint8Array.prototype, 'a plain Uint8Array, not a Buffer');
      // The getter hands out a copy: changing it changes nothing.
      chain[0][0] ^= 0xff;
      assert.notEqual(client.peerCertificateChain[0][0], chain[0][0]);
      chain.pop();
      assert.equal(client.peerCertificateChain.length, 1);
      assert.deepEqual(session.peerCertificateChain, [], 'clients send no certificate');
      for (const side of [client, session]) {
        assert.equal(typeof side.traceId, 'string');
        assert.match(side.traceId as string, /^[0-9a-f]+$/);
        assert.equal(side.resumed, false);
      }
      assert.equal(client.remoteAddress?.port, server.address.port);
      assert.equal(session.remoteAddress?.port, client.localAddress?.port);
      assert.equal(session.remoteAddress?.address, '127.0.0.1');
      // Connecting to an IP address without serverName sends no SNI.
      assert.equal(session.serverName, undefined);
    } finally {
      client.close();
    }
  });

  test('the server sees the serverName the client sent (dangerouslyAcceptAnyCertificate)', async () => {
    const { client, session } = await connectPair(server, {
      serverCertificateHashes: undefined,
      dangerouslyAcceptAnyCertificate: true,
      serverName: 'localhost',
    });
    try {
      await confirmHandshake(client, session);
      assert.equal(session.serverName, 'localhost');
      assert.equal(client.peerCertificateChain.length, 1);
    } finally {
      client.close();
    }
  });

  test('the server sees the serverName the client sent (ca)', async () => {
    const { client, session } = await connectPair(server, {
      serverCertificateHashes: undefined,
      ca: server.certificate,
      serverName: 'localhost',
    });
    try {
      await confirmHandshake(client, session);
      assert.equal(session.serverName, 'localhost');
    } finally {
      client.close();
    }
  });

  test('before ready the info is empty', async () => {
    const accepted = server.accept();
    const client = connect(server);
    try {
      assert.equal(client.protocol, '');
      assert.equal(client.traceId, undefined);
      assert.deepEqual(client.peerCertificateChain, []);
      assert.equal(client.resumed, false);
      await within(5000, client.ready, 'ready');
      assert.equal(client.protocol, PROTOCOL);
      await confirmHandshake(client, (await within(5000, accepted, 'accept')) as QuicTransport);
    } finally {
      client.close();
    }
  });
});
