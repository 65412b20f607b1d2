import assert from 'node:assert/strict';
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
