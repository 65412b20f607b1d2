import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer } from '../../lib/index.js';
import { connectPair, nextIncoming, readAll, startServer, within, writeUntilError } from '../helpers/pair.js';

/** Writes a few bytes on a new uni stream, aborts it with `reason`; returns what the reader got. */
async function resetSeenByPeer(server: QuicServer, reason: unknown): Promise<unknown> {
  const { client, session } = await connectPair(server);
  try {
    const writer = (await client.createUnidirectionalStream()).getWriter();
    await writer.write(new Uint8Array([1, 2, 3]));
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    await writer.abort(reason);
    return await within(
      5000,
      readAll(readable).then(
        () => null,
        (e: unknown) => e,
      ),
      'reset',
    );
  } finally {
    client.close();
  }
}

describe('stream abort and cancel', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('writable.abort(e) resets the stream with e.streamErrorCode', async () => {
    const error = await resetSeenByPeer(server, new QuicTransportError('stop', { streamErrorCode: 42 }));
    assert.ok(error instanceof QuicTransportError);
    assert.equal(error.source, 'stream');
    assert.equal(error.code, 'ERR_QUIC_STREAM_RESET');
    assert.equal(error.streamErrorCode, 42);
  });

  test('abort with any other reason sends code 0', async () => {
    const error = await resetSeenByPeer(server, new Error('plain'));
    assert.ok(error instanceof QuicTransportError);
    assert.equal(error.streamErrorCode, 0);
  });

  test('readable.cancel(e) sends STOP_SENDING and the writer errors with the code', async () => {
    const { client, session } = await connectPair(server);
    const { writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1]));
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    await theirs.readable.cancel(new QuicTransportError('no thanks', { streamErrorCode: 7 }));
    const error = await writeUntilError(writer, 'stop sending');
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 7);
    client.close();
  });

  test("a STOP_SENDING that arrives before a write's held last byte leaves still reaches the writer", async () => {
    // Each write keeps its last byte until the end of the turn (send-stream.ts). When quiche
    // learns of STOP_SENDING first, sending that byte is what reports it, and quiche forgets a
    // finished stream (and the code) once it has said so: the writer must error then and there.
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    await writer.write(new Uint8Array([1]));
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    await readable.cancel(new QuicTransportError('no thanks', { streamErrorCode: 11 }));
    // Let the STOP_SENDING, and the RESET_STREAM quiche answers it with, be exchanged.
    await new Promise((resolve) => setTimeout(resolve, 100));
    // One byte, all of it held back: rejected at once when quiche knows of the STOP_SENDING,
    // else by a later write.
    const error = await writer.write(new Uint8Array([2])).then(
      () => writeUntilError(writer, 'stop sending'),
      (e: unknown) => e,
    );
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 11);
    client.close();
  });

  test('large codes up to 2^62-1 survive the round trip', async () => {
    const code = (1n << 62n) - 1n;
    const error = await resetSeenByPeer(server, new QuicTransportError('big', { streamErrorCode: code }));
    assert.ok(error instanceof QuicTransportError);
    assert.equal(error.streamErrorCode, code);
  });
});
