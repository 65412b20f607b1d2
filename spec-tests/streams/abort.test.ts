import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer } from '../../lib/index.js';
import { connectPair, nextIncoming, readAll, startServer, within } from '../helpers/pair.js';

describe('stream abort and cancel', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('writable.abort(e) resets the stream with e.streamErrorCode', async () => {
    const { client, session } = await connectPair(server);
    const writable = await client.createUnidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1, 2, 3]));
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    await writer.abort(new QuicTransportError('stop', { streamErrorCode: 42 }));
    const error = await within(
      5000,
      readAll(readable).then(
        () => null,
        (e: unknown) => e,
      ),
      'reset',
    );
    assert.ok(error instanceof QuicTransportError);
    assert.equal(error.source, 'stream');
    assert.equal(error.code, 'ERR_QUIC_STREAM_RESET');
    assert.equal(error.streamErrorCode, 42);
    client.close();
  });

  test('abort with any other reason sends code 0', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    await writer.write(new Uint8Array([9]));
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    await writer.abort(new Error('plain'));
    const error = await within(
      5000,
      readAll(readable).then(
        () => null,
        (e: unknown) => e,
      ),
      'reset',
    );
    assert.ok(error instanceof QuicTransportError);
    assert.equal(error.streamErrorCode, 0);
    client.close();
  });

  test('readable.cancel(e) sends STOP_SENDING and the writer errors with the code', async () => {
    const { client, session } = await connectPair(server);
    const { writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1]));
    const theirs = await nextIncoming(session.incomingBidirectionalStreams);
    await theirs.readable.cancel(new QuicTransportError('no thanks', { streamErrorCode: 7 }));
    const error = await within(
      5000,
      (async () => {
        for (;;) {
          await writer.write(new Uint8Array(1024));
          await new Promise((r) => setTimeout(r, 5));
        }
      })().catch((e: unknown) => e),
      'stop sending',
    );
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 7);
    client.close();
  });

  test('large codes up to 2^62-1 survive the round trip', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    await writer.write(new Uint8Array([1]));
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    const code = (1n << 62n) - 1n;
    await writer.abort(new QuicTransportError('big', { streamErrorCode: code }));
    const error = (await readAll(readable).catch((e: unknown) => e)) as QuicTransportError;
    assert.equal(error.streamErrorCode, code);
    client.close();
  });
});
