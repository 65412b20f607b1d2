/** Regressions from review: each test names the defect it guards against. */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer } from '../../lib/index.js';
import { connect, connectPair, echoText, echo, nextIncoming, startServer, within } from '../helpers/pair.js';

const WINDOW = 64 * 1024;

/** Writes until a write stays pending (the peer's window is full); returns that write. */
async function fillWindow(writer: WritableStreamDefaultWriter<Uint8Array>): Promise<{ pending: Promise<void> }> {
  for (let i = 0; i < 1000; i++) {
    const write = writer.write(new Uint8Array(16 * 1024));
    write.catch(() => {});
    const settled = await Promise.race([
      write.then(
        () => true,
        () => true,
      ),
      new Promise((r) => setTimeout(r, 200, false)),
    ]);
    if (!settled) return { pending: write };
  }
  throw new Error('the writer was never held back');
}

describe('regressions', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({
      initialMaxStreamDataUni: WINDOW,
      initialMaxStreamDataBidiRemote: WINDOW,
      maxStreamWindow: WINDOW,
    });
  });
  after(() => server.close());

  test('STOP_SENDING while the writer is blocked rejects the pending write with the code (no busy loop)', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const { pending } = await fillWindow(writer);
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    await readable.cancel(new QuicTransportError('stop', { streamErrorCode: 11 }));
    const error = await within(
      5000,
      pending.then(
        () => null,
        (e: unknown) => e,
      ),
      'pending write',
    );
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    assert.equal(error.streamErrorCode, 11);
    client.close();
  });

  test('abort() during a blocked write sends RESET_STREAM at once', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const { pending } = await fillWindow(writer);
    const aborted = writer.abort(new QuicTransportError('give up', { streamErrorCode: 5 }));
    await within(5000, aborted, 'abort');
    await assert.rejects(pending);
    const readable = await nextIncoming(session.incomingUnidirectionalStreams);
    const error = await within(
      5000,
      (async () => {
        for await (const _ of readable);
      })().then(
        () => null,
        (e: unknown) => e,
      ),
      'reset reaches the reader',
    );
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.streamErrorCode, 5);
    client.close();
  });

  test('after the user cancels incoming streams, new peer streams are refused and close still works', async () => {
    const { client, session } = await connectPair(server);
    await session.incomingBidirectionalStreams.cancel();
    const { readable, writable } = await client.createBidirectionalStream();
    const writer = writable.getWriter();
    await writer.write(new Uint8Array([1]));
    const refused = await within(
      5000,
      readable
        .getReader()
        .read()
        .then(
          () => null,
          (e: unknown) => e,
        ),
      'refusal',
    );
    assert.ok(refused instanceof QuicTransportError);
    assert.equal(refused.code, 'ERR_QUIC_STREAM_RESET');
    session.close({ closeCode: 2, reason: 'done' });
    assert.deepEqual(await within(5000, session.closed, 'closed'), { closeCode: 2, reason: 'done' });
    assert.deepEqual(await within(5000, client.closed, 'client closed'), { closeCode: 2, reason: 'done' });
  });

  test('two pending BYOB reads both settle when FIN arrives with data', async () => {
    const { client, session } = await connectPair(server);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const readable = await (async () => {
      await writer.write(new Uint8Array([1, 2, 3]));
      return nextIncoming(session.incomingUnidirectionalStreams);
    })();
    const reader = readable.getReader({ mode: 'byob' });
    const first = reader.read(new Uint8Array(16));
    const second = reader.read(new Uint8Array(16));
    await writer.close();
    const a = await within(5000, first, 'first read');
    const b = await within(5000, second, 'second read');
    const got = [...(a.value ?? []), ...(b.done ? [] : (b.value ?? []))];
    assert.deepEqual(got, [1, 2, 3]);
    if (!b.done) assert.equal((await within(5000, reader.read(new Uint8Array(16)), 'end')).done, true);
    client.close();
  });

  test('an empty serverCertificateHashes list means ordinary verification', async () => {
    const client = connect(server, { serverCertificateHashes: [] });
    await assert.rejects(within(5000, client.ready, 'ready'), { code: 'ERR_QUIC_CERTIFICATE' });
  });

  test('echo still works on the same server afterwards', async () => {
    const { client, session } = await connectPair(server);
    echo(session);
    assert.equal(await echoText(client, 'still fine'), 'still fine');
    client.close();
  });
});
