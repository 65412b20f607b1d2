/**
 * A session's incoming streams (`incomingBidirectionalStreams`, `incomingUnidirectionalStreams`)
 * are built only when first asked for (lib/streams/incoming.ts): streams the peer opened before
 * that are not lost, and readers, iterators, cancelling and the session's end behave as on any
 * `ReadableStream`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicReceiveStream, type QuicServer, type QuicTransport } from '../../lib/index.js';
import { connectPair, readAll, startServer, within, writeText, writeUntilError } from '../helpers/pair.js';

/** Opens `n` unidirectional streams from `client`, the i-th carrying the text `s<i>`. */
async function sendStreams(client: QuicTransport, n: number, from = 0): Promise<void> {
  for (let i = from; i < from + n; i++) await writeText(await client.createUnidirectionalStream(), `s${i}`);
}

async function textOf(readable: QuicReceiveStream): Promise<string> {
  return (await within(5000, readAll(readable), 'stream')).toString();
}

/** The iterator's next result, failing after 5 s. */
function nextOf<T>(iterator: AsyncIterator<T>): Promise<IteratorResult<T>> {
  return within(5000, iterator.next(), 'next incoming stream');
}

describe('incoming streams', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer();
  });
  after(() => server.close());

  test('for await gets every stream in order, those that came before it was asked for included', async () => {
    const { client, session } = await connectPair(server);
    await sendStreams(client, 3);
    await new Promise((resolve) => setTimeout(resolve, 50)); // let them arrive before anyone asks
    const sending = sendStreams(client, 3, 3);
    const texts: string[] = [];
    for await (const readable of session.incomingUnidirectionalStreams) {
      texts.push(await textOf(readable));
      if (texts.length === 6) break;
    }
    await sending;
    assert.deepEqual(texts, ['s0', 's1', 's2', 's3', 's4', 's5']);
    client.close();
  });

  test('streams whose first bytes arrive together come in the order the peer opened them', async () => {
    const { client, session } = await connectPair(server);
    for (let i = 0; i < 8; i++) {
      const { writable } = await client.createBidirectionalStream();
      const writer = writable.getWriter();
      await writer.write(new Uint8Array([i])); // a write's last byte leaves with the next packets
      writer.releaseLock();
    }
    const firsts: number[] = [];
    for await (const stream of session.incomingBidirectionalStreams) {
      const { value } = await within(5000, stream.readable.getReader().read(), 'first byte');
      firsts.push(value?.[0] ?? -1);
      if (firsts.length === 8) break;
    }
    assert.deepEqual(firsts, [0, 1, 2, 3, 4, 5, 6, 7]);
    client.close();
  });

  test('an iterator locks the stream until it is done, as the standard one does', async () => {
    const { client, session } = await connectPair(server);
    const incoming = session.incomingUnidirectionalStreams;
    const iterator = incoming[Symbol.asyncIterator]();
    assert.equal(incoming.locked, true);
    assert.throws(() => incoming.getReader(), TypeError);
    assert.throws(() => incoming.values(), TypeError);
    assert.throws(() => incoming.tee(), TypeError);
    assert.throws(() => incoming.pipeThrough(new TransformStream()), TypeError);
    await assert.rejects(incoming.cancel(), TypeError);
    await assert.rejects(incoming.pipeTo(new WritableStream()), TypeError);
    await iterator.return?.();
    assert.equal(incoming.locked, false);
    // …and a reader's lock keeps an iterator out.
    const reader = incoming.getReader();
    assert.throws(() => incoming[Symbol.asyncIterator](), TypeError);
    reader.releaseLock();
    client.close();
  });

  test('leaving a for await cancels: later peer streams are refused', async () => {
    const { client, session } = await connectPair(server);
    await sendStreams(client, 1);
    for await (const readable of session.incomingUnidirectionalStreams) {
      assert.equal(await textOf(readable), 's0');
      break;
    }
    assert.equal(session.incomingUnidirectionalStreams.locked, false);
    const writer = (await client.createUnidirectionalStream()).getWriter();
    const error = await writeUntilError(writer, 'refusal');
    assert.ok(error instanceof QuicTransportError, String(error));
    assert.equal(error.code, 'ERR_QUIC_STREAM_STOPPED');
    client.close();
  });

  test('values({ preventCancel: true }) leaves the stream open for the next reader', async () => {
    const { client, session } = await connectPair(server);
    await sendStreams(client, 2);
    const incoming = session.incomingUnidirectionalStreams;
    for await (const readable of incoming.values({ preventCancel: true })) {
      assert.equal(await textOf(readable), 's0');
      break;
    }
    const reader = incoming.getReader();
    const { value } = await within(5000, reader.read(), 'read after the iterator');
    assert.equal(await textOf(value as QuicReceiveStream), 's1');
    reader.releaseLock();
    client.close();
  });

  test('a reader and an iterator take turns without losing or repeating a stream', async () => {
    const { client, session } = await connectPair(server);
    const incoming = session.incomingUnidirectionalStreams;
    const reader = incoming.getReader();
    const first = reader.read(); // pending before any stream came
    await sendStreams(client, 3);
    assert.equal(await textOf((await within(5000, first, 'first')).value as QuicReceiveStream), 's0');
    reader.releaseLock();
    const iterator = incoming.values({ preventCancel: true });
    assert.equal(await textOf((await nextOf(iterator)).value as QuicReceiveStream), 's1');
    await iterator.return?.();
    const again = incoming.getReader();
    assert.equal(await textOf((await within(5000, again.read(), 'third')).value as QuicReceiveStream), 's2');
    again.releaseLock();
    client.close();
  });

  test('a clean close ends the iteration after the streams that came, and a waiting next()', async () => {
    const { client, session } = await connectPair(server);
    await sendStreams(client, 2);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const iterator = session.incomingUnidirectionalStreams[Symbol.asyncIterator]();
    const waiting = session.incomingBidirectionalStreams[Symbol.asyncIterator]().next();
    client.close({ closeCode: 0, reason: 'bye' });
    await within(5000, session.closed, 'closed');
    // The streams themselves ended with the session; the iteration still hands out both.
    let count = 0;
    for (let r = await nextOf(iterator); !r.done; r = await nextOf(iterator)) count++;
    assert.equal(count, 2);
    assert.deepEqual(await within(5000, waiting, 'pending next'), { value: undefined, done: true });
    assert.equal(session.incomingUnidirectionalStreams.locked, false);
  });

  test('a failed session rejects a waiting next() and a later one with its error', async () => {
    const controller = new AbortController();
    const { client } = await connectPair(server, { signal: controller.signal });
    const iterator = client.incomingUnidirectionalStreams[Symbol.asyncIterator]();
    const waiting = iterator.next();
    controller.abort();
    await assert.rejects(within(5000, waiting, 'waiting next'), { code: 'ERR_QUIC_ABORTED' });
    // The iteration is over: the stream is free, and a new iterator sees the same error.
    assert.equal(client.incomingUnidirectionalStreams.locked, false);
    await assert.rejects(client.incomingUnidirectionalStreams[Symbol.asyncIterator]().next(), {
      code: 'ERR_QUIC_ABORTED',
    });
  });
});
