/**
 * One `send` batch can carry a connection's packets to two addresses: when a datagram of the
 * connection comes from a new address, quiche probes that path (PATH_CHALLENGE) while it goes on
 * sending on the active one. The binding flags each packet that goes elsewhere than the
 * connection's packet before it, and `batchPeer` says where each flagged one goes; asking
 * `peerAddress` (where the connection sends now) sent the probe to the active path, so the new
 * path could never be validated. The first test drives the binding sans-IO (the test plays the
 * network), the second goes through the pump and real sockets.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { once } from 'node:events';
import { test } from 'node:test';
import { QuicTransport } from '../../lib/index.js';
import { PROTOCOL, echo, echoText, startServer, within } from '../helpers/pair.js';
import { CLIENT, pair, sendOnce } from '../helpers/sans-io.js';

const PEER_CHANGED = 0x8000_0000;
const ELSEWHERE = 6666;

test('a probe of a new path and the active path’s packets in one batch each go to their own address', () => {
  const { client, server, handle } = pair();
  assert.ok(client.streamOpen(handle, 0, 127));
  assert.equal(client.streamSend(handle, 0, Buffer.alloc(3000, 1), false, false), 3000);
  const { datagrams } = sendOnce(client);
  assert.ok(datagrams.length >= 2, `the client sent ${datagrams.length} datagrams`);
  // A copy of the first datagram comes from elsewhere (as a forwarder would send it), then the
  // rest from the client's own address.
  const reply = Buffer.alloc(1500);
  server.recv(datagrams[0], CLIENT.host, ELSEWHERE, reply);
  for (const d of datagrams.slice(1)) server.recv(d, CLIENT.host, CLIENT.port, reply);

  const sent = sendOnce(server);
  const destinations: number[] = [];
  let port = CLIENT.port;
  let changed = 0;
  for (let i = 0; i < sent.datagrams.length; i++) {
    if ((sent.meta[i * 2 + 1] & PEER_CHANGED) !== 0) port = server.batchPeer(changed++).port;
    destinations.push(port);
  }
  assert.ok(destinations.includes(ELSEWHERE), `a probe goes to the new address: ${destinations.join(', ')}`);
  assert.equal(destinations.at(-1), CLIENT.port, 'the active path goes on at the client’s address');
  assert.throws(() => server.batchPeer(changed), { code: 'ERR_OUT_OF_RANGE' });
});

test('through the pump: a datagram forwarded from a second address gets its probe there', async () => {
  const server = await startServer();
  // A forwarder between client and server; once asked, it also sends the server a copy of the
  // client's next datagram from a second socket, just before the original.
  const front = dgram.createSocket('udp4');
  const side = dgram.createSocket('udp4');
  front.bind(0, '127.0.0.1');
  side.bind(0, '127.0.0.1');
  await Promise.all([once(front, 'listening'), once(side, 'listening')]);
  let client: dgram.RemoteInfo | undefined;
  let copyNext = false;
  front.on('message', (msg, from) => {
    if (from.port === server.address.port) {
      if (client) front.send(msg, client.port, client.address);
      return;
    }
    client = from;
    if (copyNext) {
      copyNext = false;
      side.send(msg, server.address.port, '127.0.0.1');
    }
    front.send(msg, server.address.port, '127.0.0.1');
  });
  const probed = new Promise<Buffer>((resolve) => side.once('message', resolve));
  const transport = new QuicTransport(`quic://127.0.0.1:${front.address().port}`, {
    protocols: [PROTOCOL],
    serverCertificateHashes: server.certificateHashes,
  });
  try {
    const session = await within(5000, server.accept(), 'accept');
    await within(5000, transport.ready, 'ready');
    echo(session!);
    assert.equal(await echoText(transport, 'before'), 'before');
    // Several datagrams leave at once; the first also comes from the second address.
    copyNext = true;
    const { writable } = await transport.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array(4000));
    const probe = await within(5000, probed, 'a datagram at the second address');
    assert.ok(probe.length >= 1200, `a path probe is padded to 1200 bytes, got ${probe.length}`);
    // The connection goes on at the first address.
    assert.equal(await echoText(transport, 'after'), 'after');
  } finally {
    transport.close();
    front.close();
    side.close();
    await server.close();
  }
});
