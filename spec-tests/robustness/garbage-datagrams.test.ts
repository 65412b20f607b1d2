/**
 * Hostile input at a server's port: random bytes, truncated and corrupted copies of a real
 * client Initial, unknown versions. None of it may throw, crash, or disturb an established
 * session; unknown versions get Version Negotiation (RFC 9000 §6, RFC 8999 §6).
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { after, before, describe, test } from 'node:test';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { QuicTransport, QuicTransportError, type QuicServer } from '../../lib/index.js';
import { PROTOCOL, connectPair, echo, echoText, readAll, startServer, within } from '../helpers/pair.js';

/** A small seeded PRNG (mulberry32), so that a failing run can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SEED = Number(process.env.QUICHEX_FUZZ_SEED ?? 0x5eed);

function randomBuffer(rand: () => number, size: number): Buffer {
  const b = Buffer.allocUnsafe(size);
  for (let i = 0; i < size; i++) b[i] = Math.floor(rand() * 256);
  return b;
}

/**
 * A long-header packet of an unknown version with 8-byte CIDs, zero-filled after them (so
 * that it also parses as an Initial with an empty token), padded to `size` bytes.
 */
function unknownVersionPacket(rand: () => number, size = 1200): { packet: Buffer; dcid: Buffer; scid: Buffer } {
  const packet = Buffer.alloc(size);
  const dcid = randomBuffer(rand, 8);
  const scid = randomBuffer(rand, 8);
  packet[0] = 0xc0;
  packet.writeUInt32BE(0x1a2a3a4a, 1); // reserved for forcing version negotiation (RFC 9000 §15)
  packet[5] = 8;
  dcid.copy(packet, 6);
  packet[14] = 8;
  scid.copy(packet, 15);
  return { packet, dcid, scid };
}

/** A raw UDP socket on loopback that records what it receives. */
async function rawSocket(): Promise<{ socket: dgram.Socket; received: Buffer[] }> {
  const socket = dgram.createSocket('udp4');
  const received: Buffer[] = [];
  socket.on('message', (msg) => received.push(msg));
  socket.bind(0, '127.0.0.1');
  await once(socket, 'listening');
  return { socket, received };
}

/** Sends `datagrams` to `port`, in batches that let the server's socket keep up. */
async function flood(socket: dgram.Socket, port: number, datagrams: Buffer[]): Promise<void> {
  const BATCH = 32;
  for (let i = 0; i < datagrams.length; i += BATCH) {
    const sent = datagrams
      .slice(i, i + BATCH)
      .map((d) => new Promise<void>((resolve) => socket.send(d, port, '127.0.0.1', () => resolve())));
    await Promise.all(sent);
    // One turn of the loop, so that the server reads this batch before the next arrives.
    await nextTurn();
  }
}

/** The first datagram a real client sends: a padded Initial carrying its ClientHello. */
async function captureClientInitial(): Promise<Buffer> {
  const { socket } = await rawSocket();
  try {
    const client = new QuicTransport(`quic://127.0.0.1:${socket.address().port}`, {
      protocols: [PROTOCOL],
      dangerouslyAcceptAnyCertificate: true,
      handshakeTimeout: 5000,
    });
    const [initial] = (await within(5000, once(socket, 'message'), 'client Initial')) as [Buffer];
    client.close();
    await assert.rejects(client.closed, QuicTransportError);
    return initial;
  } finally {
    socket.close();
  }
}

/** One echo round trip over a new bidirectional stream. */
async function roundTrip(client: QuicTransport, text: string): Promise<void> {
  assert.equal(await echoText(client, text), text);
}

describe('garbage datagrams at a server', () => {
  let server: QuicServer;
  let raw: Awaited<ReturnType<typeof rawSocket>>;
  before(async () => {
    server = await startServer();
    raw = await rawSocket();
  });
  after(async () => {
    raw.socket.close();
    await server.close();
  });

  test('an unknown version gets a Version Negotiation packet back', async () => {
    const rand = prng(SEED);
    const { packet, dcid, scid } = unknownVersionPacket(rand);
    const reply = once(raw.socket, 'message') as Promise<[Buffer]>;
    raw.socket.send(packet, server.address.port, '127.0.0.1');
    const [vn] = await within(3000, reply, 'Version Negotiation');
    // RFC 8999 §6: long header, version 0, CIDs swapped, then the supported versions.
    assert.ok(vn.length >= 7, `reply of ${vn.length} bytes`);
    assert.equal(vn[0] & 0x80, 0x80, 'long header bit');
    assert.equal(vn.readUInt32BE(1), 0, 'version field of a Version Negotiation packet');
    assert.equal(vn[5], scid.length);
    assert.deepEqual(vn.subarray(6, 6 + scid.length), scid, 'DCID echoes our SCID');
    const at = 6 + scid.length;
    assert.equal(vn[at], dcid.length);
    assert.deepEqual(vn.subarray(at + 1, at + 1 + dcid.length), dcid, 'SCID echoes our DCID');
    const list = vn.subarray(at + 1 + dcid.length);
    assert.ok(list.length > 0 && list.length % 4 === 0, `version list of ${list.length} bytes`);
    const versions = Array.from({ length: list.length / 4 }, (_, i) => list.readUInt32BE(i * 4));
    assert.ok(versions.includes(1), `versions ${versions.map((v) => v.toString(16)).join(', ')}`);
    assert.ok(!versions.includes(0x1a2a3a4a));
  });

  test('Version Negotiation depends only on the version-independent header (RFC 8999)', async () => {
    const rand = prng(SEED + 1);
    // Type bits other than Initial's, and random bytes after the CIDs: both are the unknown
    // version's business, not the server's.
    for (const first of [0xc0, 0xd0, 0xe0, 0xf0, 0xff]) {
      const { packet } = unknownVersionPacket(rand);
      packet[0] = first;
      randomBuffer(rand, packet.length - 23).copy(packet, 23);
      const reply = once(raw.socket, 'message') as Promise<[Buffer]>;
      raw.socket.send(packet, server.address.port, '127.0.0.1');
      const [vn] = await within(1000, reply, `Version Negotiation for first byte 0x${first.toString(16)}`);
      assert.equal(vn.readUInt32BE(1), 0);
    }
  });

  test('thousands of garbage datagrams leave sessions and new connections working', async () => {
    const initial = await captureClientInitial();
    assert.ok(initial.length >= 1200 && (initial[0] & 0xf0) === 0xc0, 'a real client Initial');
    const { client, session } = await within(5000, connectPair(server), 'first connection');
    echo(session);
    await roundTrip(client, 'before');

    const rand = prng(SEED + 2);
    const garbage: Buffer[] = [];
    // Random bytes of every size from 0 to 1500.
    for (let size = 0; size <= 1500; size++) garbage.push(randomBuffer(rand, size));
    // Random long-header packets big enough to be Initials.
    for (let i = 0; i < 500; i++) {
      const b = randomBuffer(rand, 1200 + Math.floor(rand() * 301));
      b[0] |= 0xc0;
      if (i % 2 === 0) b.writeUInt32BE(1, 1); // QUIC v1: gets past version negotiation
      garbage.push(b);
    }
    // Short-header packets with random connection IDs.
    for (let i = 0; i < 300; i++) {
      const b = randomBuffer(rand, 20 + Math.floor(rand() * 1300));
      b[0] = (b[0] & 0x3f) | 0x40;
      garbage.push(b);
    }
    // Every truncation of a real Initial.
    for (let len = 0; len < initial.length; len++) garbage.push(Buffer.from(initial.subarray(0, len)));
    // Real Initials with one byte corrupted, in the header and in the protected payload.
    for (let i = 0; i < 400; i++) {
      const b = Buffer.from(initial);
      const at = i < 100 ? i % 40 : Math.floor(rand() * b.length);
      b[at] ^= 1 + Math.floor(rand() * 255);
      garbage.push(b);
    }
    // Unknown versions, each of which should be answered.
    const vnCount = 50;
    for (let i = 0; i < vnCount; i++) garbage.push(unknownVersionPacket(rand).packet);
    assert.ok(garbage.length >= 3500, `${garbage.length} datagrams`);

    raw.received.length = 0;
    let echoes = 0;
    let flooding = true;
    const echoing = (async () => {
      while (flooding) await roundTrip(client, `during ${echoes++}`);
    })();
    echoing.catch(() => {}); // awaited below; this only keeps an early failure from being unhandled
    try {
      await within(60_000, flood(raw.socket, server.address.port, garbage), 'flood');
    } finally {
      flooding = false;
    }
    await within(10_000, echoing, 'echoes during the flood');
    assert.ok(echoes > 0);

    // The established session is intact.
    await roundTrip(client, 'after');
    const stream = await client.createBidirectionalStream();
    const big = Buffer.alloc(256 * 1024, 0x5a);
    const writing = (async () => {
      const w = stream.writable.getWriter();
      await w.write(big);
      await w.close();
    })();
    assert.deepEqual(await within(10_000, readAll(stream.readable), 'big echo'), big);
    await writing;

    // A new client still gets in.
    const { client: next, session: nextSession } = await within(5000, connectPair(server), 'new connection');
    echo(nextSession);
    await roundTrip(next, 'new client');

    // Version negotiation kept working, and replies stayed bounded.
    const vn = raw.received.filter((d) => d.length >= 5 && (d[0] & 0x80) !== 0 && d.readUInt32BE(1) === 0);
    assert.ok(vn.length >= 1, 'no Version Negotiation reply during the flood');
    assert.ok(raw.received.length <= garbage.length, `${raw.received.length} replies to ${garbage.length} datagrams`);

    next.close();
    client.close({ closeCode: 0, reason: 'done' });
    assert.deepEqual(await within(5000, client.closed, 'closed'), { closeCode: 0, reason: 'done' });
    await within(5000, next.closed, 'next closed');
  });
});
