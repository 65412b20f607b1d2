import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { QuicServer } from '../../lib/index.js';
import { connectPair, startServer, within } from '../helpers/pair.js';

const WINDOW = 256 * 1024;

describe('backpressure', () => {
  let server: QuicServer;
  before(async () => {
    // Small windows so that the test sends far more than they allow.
    server = await startServer({
      initialMaxStreamDataBidiRemote: WINDOW,
      maxStreamWindow: WINDOW,
      initialMaxData: 4 * WINDOW,
    });
  });
  after(() => server.close());

  test('a paused reader stops the writer and memory stays flat', async () => {
    const { client, session } = await connectPair(server);
    const incoming = session.incomingBidirectionalStreams.getReader();
    const { writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    const chunk = new Uint8Array(64 * 1024);
    let accepted = 0;
    let stalled = false;
    global.gc?.();
    const before = process.memoryUsage();
    // Try to write 64 MiB; the server never reads, so writes must stop near the window.
    for (let i = 0; i < 1024; i++) {
      const write = writer.write(chunk).then(() => {
        accepted += chunk.length;
      });
      const settled = await Promise.race([write.then(() => true), new Promise((r) => setTimeout(r, 300, false))]);
      if (!settled) {
        stalled = true;
        break;
      }
    }
    assert.ok(stalled, 'the writer should wait for the peer');
    // quiche may buffer up to the connection's send capacity beyond the peer's window.
    assert.ok(accepted <= 8 * WINDOW, `accepted ${accepted} bytes with a ${WINDOW}-byte window`);
    const after = process.memoryUsage();
    assert.ok(after.rss - before.rss < 64 * 1024 * 1024, `rss grew by ${after.rss - before.rss} bytes`);

    // The stream exists on the server; reading it lets the writer go on.
    const { value: stream } = await within(5000, incoming.read(), 'incoming stream');
    const reader = stream!.readable.getReader();
    let read = 0;
    const more = writer.write(chunk);
    while (read < accepted + chunk.length) {
      const { value, done } = await within(5000, reader.read(), 'read');
      assert.equal(done, false);
      read += value!.byteLength;
    }
    await within(5000, more, 'write after the reader resumed');
    client.close();
  });
});
