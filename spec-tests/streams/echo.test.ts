import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, describe, test } from 'node:test';
import type { QuicServer } from '../../lib/index.js';
import { connectPair, echo, readAll, startServer, within } from '../helpers/pair.js';

describe('bidirectional echo', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('bytes written on a bidi stream come back unchanged', async () => {
    const { client, session } = await connectPair(server);
    echo(session);
    assert.equal(client.protocol, 'test');
    assert.equal(session.protocol, 'test');
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new TextEncoder().encode('hello '));
    await writer.write(new TextEncoder().encode('quic'));
    await writer.close();
    const back = await within(5000, readAll(readable), 'echo');
    assert.equal(back.toString(), 'hello quic');
    client.close();
    await client.closed;
  });

  test('a request/response round trip takes two datagrams: ACKs ride with the reply', async () => {
    const { client, session } = await connectPair(server);
    echo(session);
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    const reader = readable.getReader();
    const message = new Uint8Array(100);
    const roundTrip = async () => {
      await writer.write(message);
      for (let got = 0; got < message.length;) got += (await reader.read()).value!.byteLength;
    };
    for (let i = 0; i < 20; i++) await roundTrip(); // past the handshake and the first ACKs
    const send = dgram.Socket.prototype.send;
    let datagrams = 0;
    dgram.Socket.prototype.send = function (this: dgram.Socket, ...args: unknown[]) {
      datagrams++;
      return (send as (...a: unknown[]) => void).apply(this, args);
    } as typeof send;
    try {
      for (let i = 0; i < 200; i++) await within(5000, roundTrip(), 'round trip');
    } finally {
      dgram.Socket.prototype.send = send;
    }
    // Two is the floor (request, reply); a lone ACK now and then (delayed-ACK timer) is fine.
    assert.ok(datagrams / 200 <= 2.5, `${datagrams / 200} datagrams per round trip`);
    client.close();
  });

  test('a BYOB reader gets the bytes in its own buffer', async () => {
    const { client, session } = await connectPair(server);
    echo(session);
    const { readable, writable } = await client.createBidirectionalStream();
    const payload = Buffer.alloc(100_000, 7);
    const writing = (async () => {
      const w = writable.getWriter();
      await w.write(payload);
      await w.close();
    })();
    const reader = readable.getReader({ mode: 'byob' });
    let buffer = new ArrayBuffer(4096);
    let total = 0;
    for (;;) {
      const { value, done } = await within(5000, reader.read(new Uint8Array(buffer)), 'byob read');
      if (done) break;
      assert.ok(value.every((b) => b === 7));
      total += value.byteLength;
      buffer = value.buffer as ArrayBuffer;
    }
    await writing;
    assert.equal(total, payload.length);
    client.close();
  });
});
