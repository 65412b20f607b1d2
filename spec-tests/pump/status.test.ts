/**
 * The binding's contract for what saves the pump native calls, driven sans-IO (no sockets):
 * `send` leaves the endpoint's status in the last words of `meta` (events waiting for
 * `pollEvents`, microseconds until the next timer), `streamRecv` says when it has read all
 * that quiche has, after which a READABLE event announces more (lib/endpoint.ts and
 * lib/streams/receive-stream.ts rely on both instead of asking again), and `streamSend` holds a
 * write's last byte until the next packets or the FIN (lib/streams/send-stream.ts).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Ev, StreamResult, native } from '../../lib/native.js';
import {
  CLIENT,
  STATUS_EVENTS as EVENTS,
  STATUS_TIMER as TIMER,
  endpoints,
  pair,
  poll,
  sendOnce,
} from '../helpers/sans-io.js';

test("send's status words: the events waiting and the next timer, as pollEvents and timeout say", () => {
  const idle = endpoints().server;
  const nothing = sendOnce(idle).meta;
  assert.equal(nothing[EVENTS], 0);
  assert.equal(nothing[TIMER], native.NO_TIMER, 'no connection, no timer');

  const { client, server, handle } = pair();
  // Data on a new stream: the server has a READABLE event (and packets) once it gets it.
  assert.ok(client.streamOpen(handle, 0, 127));
  assert.equal(client.streamSend(handle, 0, Buffer.alloc(100, 7), false, false), 100);
  const reply = Buffer.alloc(1500);
  for (const d of sendOnce(client).datagrams) server.recv(d, CLIENT.host, CLIENT.port, reply);
  const { meta } = sendOnce(server);
  assert.ok(meta[EVENTS] > 0, 'the stream data waits as an event');
  const events = poll(server);
  assert.equal(events.length, meta[EVENTS]);
  assert.ok(events.some(([kind, , id]) => kind === Ev.Readable && id === 0));
  // Nothing happened since: no events wait, and the timer is the one timeout() reports.
  const again = sendOnce(server).meta;
  assert.equal(again[EVENTS], 0);
  assert.notEqual(again[TIMER], native.NO_TIMER, 'a live connection has a timer');
  const ms = server.timeout();
  assert.ok(Math.abs(again[TIMER] / 1000 - ms) < 50, `timer ${again[TIMER]} µs against timeout() ${ms} ms`);
});

test('streamRecv says when it has read everything quiche has; a READABLE event announces more', () => {
  const { client, server, handle, serverHandle } = pair();
  assert.ok(client.streamOpen(handle, 0, 127));
  const reply = Buffer.alloc(1500);
  const deliver = (bytes: number, fin: boolean) => {
    assert.equal(client.streamSend(handle, 0, Buffer.alloc(bytes, 1), fin, false), bytes);
    for (const d of sendOnce(client).datagrams) server.recv(d, CLIENT.host, CLIENT.port, reply);
    return poll(server).filter(([kind, h, id]) => kind === Ev.Readable && h === serverHandle && id === 0).length;
  };
  const decode = (r: number) => ({ n: Math.floor(r / 4), drained: r % 4 >= 2, fin: r % 2 === 1 });

  assert.equal(deliver(100, false), 1);
  // A buffer too small for all of it: not drained, read again.
  assert.deepEqual(decode(server.streamRecv(serverHandle, 0, new Uint8Array(60))), {
    n: 60,
    drained: false,
    fin: false,
  });
  assert.deepEqual(decode(server.streamRecv(serverHandle, 0, new Uint8Array(60))), {
    n: 40,
    drained: true,
    fin: false,
  });

  // Drained: the next bytes come with a READABLE event, without a read that found nothing.
  assert.equal(deliver(30, false), 1, 'a READABLE event after a drained read');
  assert.deepEqual(decode(server.streamRecv(serverHandle, 0, new Uint8Array(100))), {
    n: 30,
    drained: true,
    fin: false,
  });
  assert.equal(server.streamRecv(serverHandle, 0, new Uint8Array(100)), StreamResult.Blocked);

  // The end of the stream is never "drained": it is the end.
  assert.equal(deliver(5, true), 1);
  assert.deepEqual(decode(server.streamRecv(serverHandle, 0, new Uint8Array(100))), {
    n: 5,
    drained: false,
    fin: true,
  });
});

test("streamSend holds a write's last byte until the next packets, or sends it with the FIN", () => {
  const { client, server, handle, serverHandle } = pair();
  assert.ok(client.streamOpen(handle, 0, 127));
  const reply = Buffer.alloc(1500);
  const exchange = () => {
    for (const d of sendOnce(client).datagrams) server.recv(d, CLIENT.host, CLIENT.port, reply);
    poll(server);
  };
  const read = () => {
    const r = server.streamRecv(serverHandle, 0, new Uint8Array(1000));
    return r < 0 ? { n: 0, fin: false } : { n: Math.floor(r / 4), fin: r % 2 === 1 };
  };

  // Taken whole (all 10 bytes count); the packets built next carry all of them.
  assert.equal(client.streamSend(handle, 0, Buffer.alloc(10, 1), false, true), 10);
  exchange();
  assert.deepEqual(read(), { n: 10, fin: false });

  // A FIN before the next packets takes the held byte along: data and FIN arrive together.
  assert.equal(client.streamSend(handle, 0, Buffer.alloc(5, 2), false, true), 5);
  assert.equal(client.streamSend(handle, 0, new Uint8Array(0), true, false), 0);
  exchange();
  assert.deepEqual(read(), { n: 5, fin: true });
});

test('a connected client hands datagrams in without their sender; a server must name it', () => {
  const { client, server } = pair();
  const reply = Buffer.alloc(1500);
  const datagram = sendOnce(endpoints().client).datagrams[0];
  assert.throws(() => server.recv(datagram, null, 0, reply), { code: 'ERR_INVALID_ARG_VALUE' });
  assert.throws(() => server.recv(datagram, undefined, 0, reply), { code: 'ERR_INVALID_ARG_VALUE' });
  // A client drops what no connection of its own is addressed to, sender or not.
  assert.equal(client.recv(datagram, null, 0, reply), 0);
  assert.equal(poll(client).length, 0);
});
