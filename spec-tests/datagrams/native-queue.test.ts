/**
 * quiche keeps received DATAGRAMs in a queue of its own (4096) until the session takes them, once
 * per turn of the pump. A peer that packs more into one turn than that overflows it: quiche drops
 * the oldest, the binding counts them (`datagramsDroppedNative`, part of `droppedIncoming`) and
 * reports them to the next `dgramRecv`, and the session publishes them on
 * `quichex:datagram:drop` like its own queue's drops. Driven sans-IO: the endpoints exchange
 * datagrams without a pump, so that nothing reads the server's queue until the test does.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { Endpoint as PumpEndpoint } from '../../lib/endpoint.js';
import { snapshotStats, statsByName } from '../../lib/native.js';
import { serverOptions } from '../../lib/options.js';
import { QuicDatagramDuplexStream } from '../../lib/streams/datagrams.js';
import { DropRecorder } from '../helpers/datagrams.js';
import { CLIENT, pair, sendOnce, type Endpoint } from '../helpers/sans-io.js';

/** quiche's queue of received DATAGRAMs (binding/src/config.rs). */
const NATIVE_QUEUE = 4096;
const SENT = NATIVE_QUEUE + 300;

/** A connection whose server received SENT one-byte datagrams and read none of them. */
function overflowed(): { server: Endpoint; serverHandle: number } {
  const { client, server, handle, serverHandle } = pair();
  const reply = Buffer.alloc(1500);
  let queued = 0;
  let rounds = 0;
  for (;;) {
    // quiche takes as many as its send queue holds; each exchange carries them and the ACKs.
    while (queued < SENT && client.dgramSend(handle, Buffer.from([queued & 0xff])) === 0) queued++;
    const toServer = sendOnce(client).datagrams;
    for (const d of toServer) server.recv(d, CLIENT.host, CLIENT.port, reply);
    for (const d of sendOnce(server).datagrams) client.recv(d, null, 0, reply);
    if (queued === SENT && toServer.length === 0) break;
    assert.ok(++rounds < 1000, 'the datagrams did not get through');
  }
  assert.equal(statsByName(snapshotStats(server, serverHandle)).datagramsReceived, SENT);
  return { server, serverHandle };
}

test("dgramRecv reports, once, how many received datagrams quiche's full queue dropped", () => {
  const { server, serverHandle } = overflowed();
  const dropped = statsByName(snapshotStats(server, serverHandle)).datagramsDroppedNative;
  assert.equal(dropped, SENT - NATIVE_QUEUE);
  const out = Buffer.alloc(256 * 1024);
  const lens = new Uint32Array(256 + 1);
  assert.equal(server.dgramRecv(serverHandle, out, lens), 256);
  assert.equal(lens[256], dropped, 'the last entry: the drops since the last call');
  // The oldest were dropped: the first one left is the first of the last NATIVE_QUEUE.
  assert.equal(out[0], (SENT - NATIVE_QUEUE) & 0xff);
  assert.equal(server.dgramRecv(serverHandle, out, lens), 256);
  assert.equal(lens[256], 0, 'reported once');
});

test('the session publishes those drops as incoming, queue-full', () => {
  const { server, serverHandle } = overflowed();
  const session = {};
  // The session's datagrams over the sans-IO endpoint: what the pump would hand them is all
  // they need of it.
  const host = {
    endpoint: { native: server } as unknown as PumpEndpoint,
    handle: serverHandle,
    connected: true,
    session,
  };
  const datagrams = new QuicDatagramDuplexStream(host, serverOptions({}).datagrams);
  const drops = new DropRecorder();
  try {
    datagrams.onDatagrams();
    assert.deepEqual(drops.of(session)[0], {
      session,
      direction: 'incoming',
      reason: 'queue-full',
      count: SENT - NATIVE_QUEUE,
    });
    // Its own queue (1024 by default) then keeps the newest of what quiche kept.
    assert.equal(drops.total(session, 'queue-full'), SENT - 1024);
  } finally {
    drops.close();
  }
});
