/**
 * Stream options: `sendOrder` decides which stream's bytes leave first; `waitUntilAvailable`
 * and `signal` decide what happens when the peer's stream limit is reached.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { QuicTransportError, type QuicServer, type QuicTransport } from '../../lib/index.js';
import { echo, echoText, nextIncoming, readAll, startServer, within, writeText } from '../helpers/pair.js';
import { connectConfirmed } from '../helpers/confirm.js';
import { isPending, until } from '../helpers/poll.js';

const MIB = 1024 * 1024;

/**
 * Opens two unidirectional streams with the given sendOrders (`first` opened and written
 * first), writes `size` bytes to both in the same turn, and returns the order in which the
 * server read them to the end. `reorder` may change the sendOrders after creation.
 */
async function completionOrder(
  client: QuicTransport,
  session: QuicTransport,
  first: number,
  second: number,
  reorder?: (a: WritableStream<Uint8Array>, b: WritableStream<Uint8Array>) => void,
): Promise<string[]> {
  const size = 4 * MIB;
  const order: string[] = [];
  const received = (async () => {
    const incoming = session.incomingUnidirectionalStreams.getReader();
    const reads: Promise<void>[] = [];
    for (let i = 0; i < 2; i++) {
      const { value } = await incoming.read();
      assert.ok(value);
      reads.push(
        readAll(value).then((bytes) => {
          assert.equal(bytes.length, size);
          order.push(bytes[0] === 0x61 ? 'first' : 'second');
        }),
      );
    }
    incoming.releaseLock();
    await Promise.all(reads);
  })();
  const a = await client.createUnidirectionalStream({ sendOrder: first });
  const b = await client.createUnidirectionalStream({ sendOrder: second });
  reorder?.(a, b);
  const writes = [a, b].map(async (writable, i) => {
    const writer = writable.getWriter();
    await writer.write(new Uint8Array(size).fill(i === 0 ? 0x61 : 0x62));
    await writer.close();
  });
  await within(30_000, Promise.all([...writes, received]), 'both streams');
  return order;
}

describe('sendOrder', () => {
  let server: QuicServer;
  before(async () => {
    // Priority decides who gets what the two streams share (the congestion window): give each
    // stream a window of its own that never runs out, as a stream's own flow control would
    // otherwise pace it whatever its priority.
    server = await startServer({ initialMaxStreamDataUni: 8 * MIB, maxStreamWindow: 8 * MIB });
  });
  after(() => server.close());

  test('the stream with the higher sendOrder finishes first, though opened and written second', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      for (let round = 0; round < 3; round++) {
        assert.deepEqual(await completionOrder(client, session, -10, 10), ['second', 'first'], `round ${round}`);
      }
    } finally {
      client.close();
    }
  });

  test('with the orders swapped the first stream finishes first (the order, not the timing, decides)', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      assert.deepEqual(await completionOrder(client, session, 10, -10), ['first', 'second']);
    } finally {
      client.close();
    }
  });

  test('setting writable.sendOrder after creation changes the order', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const order = await completionOrder(client, session, 10, -10, (a, b) => {
        const first = a as WritableStream<Uint8Array> & { sendOrder: number };
        const second = b as WritableStream<Uint8Array> & { sendOrder: number };
        first.sendOrder = -10;
        second.sendOrder = 10;
        assert.equal(first.sendOrder, -10);
        assert.equal(second.sendOrder, 10);
      });
      assert.deepEqual(order, ['second', 'first']);
    } finally {
      client.close();
    }
  });

  test('sendOrder is validated: a finite number', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      echo(session);
      const { writable } = await client.createBidirectionalStream({ sendOrder: 5 });
      assert.equal(writable.sendOrder, 5);
      for (const bad of ['x', Number.NaN, Number.POSITIVE_INFINITY, {}, 1n]) {
        assert.throws(
          () => {
            writable.sendOrder = bad as number;
          },
          (e: unknown) => e instanceof TypeError && /sendOrder/.test(e.message),
          String(bad),
        );
        await assert.rejects(
          client.createBidirectionalStream({ sendOrder: bad as number }),
          (e: unknown) => e instanceof TypeError && /sendOrder/.test(e.message),
        );
      }
      assert.equal(writable.sendOrder, 5, 'a rejected value changes nothing');
      // Out-of-range numbers are clamped, not refused; the stream works.
      writable.sendOrder = -1e9;
      assert.equal(writable.sendOrder, -1e9);
      writable.sendOrder = 1e9;
      await writeText(writable, 'still fine');
      assert.equal((await client.createUnidirectionalStream()).sendOrder, 0, 'default sendOrder');
      await assert.rejects(client.createBidirectionalStream({ waitUntilAvailable: 'yes' as unknown as boolean }), {
        name: 'TypeError',
        message: /waitUntilAvailable/,
      });
    } finally {
      client.close();
    }
  });
});

/** Asserts that `promise` rejects with `ERR_QUIC_STREAM_LIMIT`. */
async function assertLimit(promise: Promise<unknown>): Promise<void> {
  await assert.rejects(within(1000, promise, 'refusal'), (e: unknown) => {
    assert.ok(e instanceof QuicTransportError, String(e));
    assert.equal(e.code, 'ERR_QUIC_STREAM_LIMIT');
    return true;
  });
}

describe('bidirectional stream limit', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ initialMaxStreamsBidi: 2 });
  });
  after(() => server.close());

  /** Opens the two streams the server allows; the server echoes them. */
  async function twoOpen() {
    const { client, session } = await connectConfirmed(server);
    echo(session);
    const first = await client.createBidirectionalStream();
    const second = await client.createBidirectionalStream();
    return { client, first, second };
  }

  /** Finishes a stream both ways: write, FIN, read the echo to its end. */
  async function finish(stream: { readable: ReadableStream<Uint8Array>; writable: WritableStream<Uint8Array> }) {
    await writeText(stream.writable, 'done');
    assert.equal((await within(5000, readAll(stream.readable), 'echo')).toString(), 'done');
  }

  test('a third stream is refused at once with ERR_QUIC_STREAM_LIMIT', async () => {
    const { client } = await twoOpen();
    try {
      await assertLimit(client.createBidirectionalStream());
      await assertLimit(client.createBidirectionalStream({ waitUntilAvailable: false }));
    } finally {
      client.close();
    }
  });

  test('waitUntilAvailable waits until a stream finishes both ways and the server grants more', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const first = await client.createBidirectionalStream();
      const second = await client.createBidirectionalStream();
      const third = client.createBidirectionalStream({ waitUntilAvailable: true });
      assert.equal(await isPending(third, 50), true, 'no credit yet');
      // Half a stream is not enough: the server read the first stream to its end, but its own
      // side of it is still open.
      await writeText(first.writable, 'there');
      const theirs = await nextIncoming(session.incomingBidirectionalStreams);
      assert.equal((await within(5000, readAll(theirs.readable), 'server read')).toString(), 'there');
      assert.equal(await isPending(third, 50), true, "the server's side is still open");
      await writeText(theirs.writable, 'back');
      assert.equal((await within(5000, readAll(first.readable), 'client read')).toString(), 'back');
      const stream = await within(5000, third, 'stream after credit');
      echo(session);
      await finish(stream);
      await finish(second);
    } finally {
      client.close();
    }
  });

  test('after a refusal the next stream (once credit comes) works: no id was used up', async () => {
    const { client, first, second } = await twoOpen();
    try {
      for (let i = 0; i < 3; i++) await assertLimit(client.createBidirectionalStream());
      await finish(first);
      const third = await within(5000, client.createBidirectionalStream({ waitUntilAvailable: true }), 'credit');
      await finish(third);
      await finish(second);
      // Two more, one after the other: the ids stay in step with the server's grants.
      for (let i = 0; i < 2; i++) {
        const next = await within(5000, client.createBidirectionalStream({ waitUntilAvailable: true }), 'credit');
        await finish(next);
      }
      assert.equal(await echoText(client, 'ok'), 'ok');
    } finally {
      client.close();
    }
  });

  test('several waiters all get a stream as credit comes', async () => {
    const { client, first, second } = await twoOpen();
    try {
      const waiting = [0, 1].map(() => client.createBidirectionalStream({ waitUntilAvailable: true }));
      await finish(first);
      await finish(second);
      const streams = await within(5000, Promise.all(waiting), 'both waiters');
      await Promise.all(streams.map(finish));
    } finally {
      client.close();
    }
  });

  test('aborting the signal stops the wait with its reason', async () => {
    const { client, first, second } = await twoOpen();
    try {
      const controller = new AbortController();
      const waiting = client.createBidirectionalStream({ waitUntilAvailable: true, signal: controller.signal });
      assert.equal(await isPending(waiting, 20), true);
      const reason = new Error('no longer needed');
      controller.abort(reason);
      await assert.rejects(within(1000, waiting, 'abort'), (e: unknown) => e === reason);
      // The abandoned wait took nothing: the next stream gets the credit and works.
      await finish(first);
      const next = await within(5000, client.createBidirectionalStream({ waitUntilAvailable: true }), 'credit');
      await finish(next);
      await finish(second);
    } finally {
      client.close();
    }
  });

  test('an already-aborted signal rejects at once, even with credit to spare', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const reason = new Error('before');
      await assert.rejects(
        within(1000, client.createBidirectionalStream({ signal: AbortSignal.abort(reason) }), 'aborted'),
        (e: unknown) => e === reason,
      );
      echo(session);
      assert.equal(await echoText(client, 'credit intact'), 'credit intact');
      await assert.rejects(client.createBidirectionalStream({ signal: {} as AbortSignal }), {
        name: 'TypeError',
        message: /options\.signal/,
      });
    } finally {
      client.close();
    }
  });

  test('closing the session rejects a waiting creation', async () => {
    const { client } = await twoOpen();
    const waiting = client.createBidirectionalStream({ waitUntilAvailable: true });
    assert.equal(await isPending(waiting, 20), true);
    client.close({ closeCode: 3, reason: 'bye' });
    await assert.rejects(within(1000, waiting, 'close'), { code: 'ERR_QUIC_SESSION_CLOSED' });
  });
});

describe('unidirectional stream limit', () => {
  let server: QuicServer;
  before(async () => {
    server = await startServer({ initialMaxStreamsUni: 2 });
  });
  after(() => server.close());

  /** Reads every incoming uni stream of `session` to its end. */
  function drain(session: QuicTransport): void {
    void (async () => {
      for await (const readable of session.incomingUnidirectionalStreams) readAll(readable).catch(() => {});
    })().catch(() => {});
  }

  test('a third stream is refused; waitUntilAvailable gets one once the server read one to its end', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const first = await client.createUnidirectionalStream();
      const second = await client.createUnidirectionalStream();
      await assertLimit(client.createUnidirectionalStream());
      const third = client.createUnidirectionalStream({ waitUntilAvailable: true });
      const controller = new AbortController();
      const abandoned = client.createUnidirectionalStream({ waitUntilAvailable: true, signal: controller.signal });
      controller.abort('changed my mind');
      await assert.rejects(within(1000, abandoned, 'abort'), (e: unknown) => e === 'changed my mind');
      drain(session);
      await writeText(first, 'one');
      const stream = await within(5000, third, 'credit');
      await writeText(stream, 'three');
      await writeText(second, 'two');
      // After the refusal and the abort, ids are still in step: more streams keep working.
      for (let i = 0; i < 4; i++) {
        const next = await within(5000, client.createUnidirectionalStream({ waitUntilAvailable: true }), 'credit');
        await writeText(next, `more ${i}`);
      }
    } finally {
      client.close();
    }
  });

  test('what the server reads arrives intact on streams opened after a refusal', async () => {
    const { client, session } = await connectConfirmed(server);
    try {
      const texts: Promise<string>[] = [];
      void (async () => {
        for await (const readable of session.incomingUnidirectionalStreams) texts.push(readAll(readable).then(String));
      })().catch(() => {});
      await writeText(await client.createUnidirectionalStream(), 'a');
      await writeText(await client.createUnidirectionalStream(), 'b');
      await assertLimit(client.createUnidirectionalStream());
      await writeText(await within(5000, client.createUnidirectionalStream({ waitUntilAvailable: true }), 'c'), 'c');
      await until(5000, () => texts.length === 3, 'three streams');
      assert.deepEqual((await Promise.all(texts)).sort(), ['a', 'b', 'c']);
    } finally {
      client.close();
    }
  });
});
