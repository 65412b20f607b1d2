/**
 * Stateless Reset (RFC 9000 §10.3): a server answers a short-header packet for a connection it
 * does not have with a packet that ends in the token that connection announced, and the client
 * that gets it fails its session at once (ERR_QUIC_STATELESS_RESET) instead of at its idle
 * timeout. The binding's side is driven sans-IO; a server that crashes and restarts with the
 * same `statelessResetKey` is a real child process, killed.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { createHmac, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { QuicServer, QuicTransport, QuicTransportError } from '../../lib/index.js';
import { Ev } from '../../lib/native.js';
import { PROTOCOL, echoText, outcome, within } from '../helpers/pair.js';
import { CLIENT, pair, poll, sendOnce, serverEndpoint, type Endpoint } from '../helpers/sans-io.js';

const KEY = Buffer.alloc(32, 0x42);
/** The length of the connection IDs a quichex server issues. */
const CID_LEN = 16;

/** The token a server announces for connection ID `cid` under `key`. */
function tokenOf(key: Buffer, cid: Uint8Array): Buffer {
  return createHmac('sha256', key).update(cid).digest().subarray(0, 16);
}

/** An established connection, and one short-header packet its client sends (stream data). */
function clientPacket(key: Buffer): ReturnType<typeof pair> & { packet: Buffer } {
  const { client, server, handle, serverHandle } = pair({ statelessResetKey: key });
  assert.ok(client.streamOpen(handle, 0, 127));
  assert.equal(client.streamSend(handle, 0, Buffer.alloc(100, 1), false, false), 100);
  const [packet] = sendOnce(client).datagrams;
  assert.equal(packet[0] & 0x80, 0, 'a short-header packet');
  return { client, server, handle, serverHandle, packet };
}

/** What `server` answers `packet` with (empty: nothing). */
function answer(server: Endpoint, packet: Buffer): Buffer {
  const reply = Buffer.alloc(1500);
  const n = server.recv(packet, CLIENT.host, CLIENT.port, reply);
  return Buffer.from(reply.subarray(0, Math.max(n, 0)));
}

test("a server without the connection resets it with the connection's token; the client closes at once", () => {
  const { client, handle, packet } = clientPacket(KEY);
  // A server with the same key that never saw the connection: one that restarted.
  const reset = answer(serverEndpoint({ statelessResetKey: KEY }), packet);
  assert.ok(reset.length >= 21 && reset.length < packet.length, `${reset.length} bytes for ${packet.length}`);
  assert.equal(reset[0] & 0xc0, 0x40, 'shaped as a short-header packet');
  assert.deepEqual(reset.subarray(-16), tokenOf(KEY, packet.subarray(1, 1 + CID_LEN)));

  assert.equal(client.recv(reset, null, 0, Buffer.alloc(1500)), 0);
  assert.ok(
    poll(client).some(([kind, h]) => kind === Ev.Closed && h === handle),
    'the connection is closed',
  );
  assert.equal(client.closeInfo(handle).source, 'reset');
});

test('a reset under another key is not for this connection: the client ignores it and goes on', () => {
  const { client, server, serverHandle, packet } = clientPacket(KEY);
  const reset = answer(serverEndpoint(), packet);
  assert.ok(reset.length >= 21, 'a server with a random key resets too');
  client.recv(reset, null, 0, Buffer.alloc(1500));
  assert.ok(!poll(client).some(([kind]) => kind === Ev.Closed || kind === Ev.Draining));
  // The server that has the connection gets the data.
  server.recv(packet, CLIENT.host, CLIENT.port, Buffer.alloc(1500));
  poll(server);
  assert.equal(Math.floor(server.streamRecv(serverHandle, 0, Buffer.alloc(200)) / 4), 100);
});

test("a packet for the client's own connection ID that quiche cannot decrypt resets it only if it ends in the token", () => {
  const { client, server, handle, serverHandle, packet } = clientPacket(KEY);
  const token = tokenOf(KEY, packet.subarray(1, 1 + CID_LEN));
  assert.ok(server.streamOpen(serverHandle, 1, 127));
  assert.equal(server.streamSend(serverHandle, 1, Buffer.alloc(100, 2), false, false), 100);
  const [toClient] = sendOnce(server).datagrams;
  assert.equal(toClient[0] & 0x80, 0, 'a short-header packet');
  const reply = Buffer.alloc(1500);
  const corrupted = Buffer.from(toClient);
  corrupted[corrupted.length - 20] ^= 0xff;
  client.recv(corrupted, null, 0, reply);
  assert.ok(!poll(client).some(([kind]) => kind === Ev.Closed || kind === Ev.Draining), 'dropped, nothing more');
  const reset = Buffer.from(toClient);
  token.copy(reset, reset.length - 16);
  client.recv(reset, null, 0, reply);
  assert.ok(poll(client).some(([kind, h]) => kind === Ev.Closed && h === handle));
  assert.equal(client.closeInfo(handle).source, 'reset');
});

test('no reset for a long-header packet or one too short to answer with a shorter reset', () => {
  const server = serverEndpoint({ statelessResetKey: KEY });
  const short = (size: number) => {
    const b = randomBytes(size);
    b[0] = 0x40 | (b[0] & 0x3f);
    return b;
  };
  assert.equal(answer(server, short(21)).length, 0, '21 bytes: a reset would not be shorter');
  assert.equal(answer(server, short(22)).length, 21);
  assert.ok(answer(server, short(1200)).length < 100, 'a big packet gets a small reset');
  // A Handshake packet (long header, version 1) for a connection the server does not have.
  const handshake = Buffer.alloc(200);
  handshake[0] = 0xe0;
  handshake.writeUInt32BE(1, 1);
  handshake[5] = CID_LEN;
  randomBytes(CID_LEN).copy(handshake, 6);
  handshake[6 + CID_LEN] = 8;
  assert.equal(answer(server, handshake).length, 0);
});

/**
 * A UDP relay on loopback to a server's port, which can be pointed at another (the server's next
 * run): the client's socket, connected to the relay, never meets an unbound port (ICMP port
 * unreachable would fail its session first; README, Server).
 */
async function relay(
  port: number,
): Promise<{ port: number; retarget: (port: number) => void; close: () => Promise<void> }> {
  const socket = dgram.createSocket('udp4');
  socket.on('error', () => {}); // what a dead server's port answers
  await new Promise<void>((resolve) => socket.bind(0, '127.0.0.1', resolve));
  let target = port;
  let client: dgram.RemoteInfo | undefined;
  socket.on('message', (msg, from) => {
    if (from.port !== target) {
      client = from;
      socket.send(msg, target, '127.0.0.1');
    } else if (client) socket.send(msg, client.port, client.address);
  });
  return {
    port: socket.address().port,
    retarget: (p) => (target = p),
    close: () => new Promise((resolve) => socket.close(resolve)),
  };
}

test('a client of a server that crashed and restarted with the same key fails at its next packet', async () => {
  const key = randomBytes(32);
  const fixture = fileURLToPath(new URL('../fixtures/reset-server.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', fixture, key.toString('hex')], {
    cwd: fileURLToPath(new URL('../..', import.meta.url)),
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  let restarted: QuicServer | undefined;
  let client: QuicTransport | undefined;
  let link: Awaited<ReturnType<typeof relay>> | undefined;
  try {
    const [line] = (await within(20_000, once(child.stdout.setEncoding('utf8'), 'data'), 'child server')) as [string];
    const { port, hash } = JSON.parse(line) as { port: number; hash: string };
    link = await relay(port);
    client = new QuicTransport(`quic://127.0.0.1:${link.port}`, {
      protocols: [PROTOCOL],
      serverCertificateHashes: [{ algorithm: 'sha-256', value: Buffer.from(hash, 'hex') }],
      maxIdleTimeout: 60_000,
    });
    assert.equal(await within(5000, echoText(client, 'before'), 'echo'), 'before');

    child.kill('SIGKILL');
    await exited;
    restarted = new QuicServer({ host: '127.0.0.1', port: 0, protocols: [PROTOCOL], statelessResetKey: key });
    await restarted.listen();
    link.retarget(restarted.address.port);

    // The next packet the client sends reaches the new server, which has no such connection.
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    void writer.write(new TextEncoder().encode('after')).catch(() => {});
    const error = await within(5000, outcome(client.closed), 'closed');
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STATELESS_RESET');
    assert.equal(await outcome(readable.getReader().closed), error);
  } finally {
    child.kill('SIGKILL');
    client?.close();
    await restarted?.close();
    await link?.close();
  }
});
