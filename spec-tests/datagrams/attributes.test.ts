/**
 * The settable attributes of `transport.datagrams` and `options.datagrams`: a wrong type throws
 * a `TypeError`, a value out of range a `RangeError`, both naming the attribute; the W3C
 * high-water-mark names are aliases of the max-buffered ones.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  QuicServer,
  QuicTransport,
  type QuicDatagramDuplexStream,
  type QuicServerOptions,
  type QuicTransportOptions,
} from '../../lib/index.js';
import { assertThrowsNaming, type ErrorClass } from '../helpers/assertions.js';

/** A URL nothing is contacted at: each client is closed before it connects. */
const URL_ = 'quic://127.0.0.1:4433';

/** Runs `check` on the datagrams of a client that is closed after. */
function withDatagrams(check: (d: QuicDatagramDuplexStream) => void, options: QuicTransportOptions = {}): void {
  const client = new QuicTransport(URL_, options);
  try {
    check(client.datagrams);
  } finally {
    client.close();
  }
}

/** A value that is not a number for a setter typed as one. */
const notNumber = (v: unknown) => v as number;

describe('datagram attributes', () => {
  test('defaults', () => {
    withDatagrams((d) => {
      assert.equal(d.incomingMaxBufferedDatagrams, 1024);
      assert.equal(d.outgoingMaxBufferedDatagrams, 1024);
      assert.equal(d.incomingHighWaterMark, 1024);
      assert.equal(d.outgoingHighWaterMark, 1024);
      assert.equal(d.incomingMaxAge, null);
      assert.equal(d.outgoingMaxAge, null);
      assert.equal(d.maxDatagramSize, 0, 'nothing can be sent before the handshake');
      assert.equal(d.writable.sendOrder, 0);
      assert.equal(d.writable, d.writable, 'one writable attribute');
    });
  });

  for (const name of ['incomingMaxAge', 'outgoingMaxAge'] as const) {
    test(`${name}: a positive number or null; -1 and 0 are RangeErrors, 'x' and NaN TypeErrors`, () => {
      withDatagrams((d) => {
        d[name] = 20;
        assert.equal(d[name], 20);
        d[name] = 0.5;
        assert.equal(d[name], 0.5);
        d[name] = Infinity;
        assert.equal(d[name], null, 'Infinity is no limit');
        d[name] = 20;
        d[name] = null;
        assert.equal(d[name], null);
        assertThrowsNaming(() => (d[name] = -1), RangeError, name);
        assertThrowsNaming(() => (d[name] = 0), RangeError, name);
        assertThrowsNaming(() => (d[name] = notNumber('x')), TypeError, name);
        assertThrowsNaming(() => (d[name] = NaN), TypeError, name);
        assertThrowsNaming(() => (d[name] = notNumber(undefined)), TypeError, name);
        assert.equal(d[name], null, 'a rejected value leaves the old one');
      });
    });
  }

  for (const [name, alias] of [
    ['incomingMaxBufferedDatagrams', 'incomingHighWaterMark'],
    ['outgoingMaxBufferedDatagrams', 'outgoingHighWaterMark'],
  ] as const) {
    test(`${name}: a positive integer, also read and written as ${alias}`, () => {
      withDatagrams((d) => {
        d[name] = 7;
        assert.equal(d[alias], 7);
        d[alias] = 9;
        assert.equal(d[name], 9);
        d[name] = 1;
        assert.equal(d[alias], 1);
        for (const key of [name, alias]) {
          assertThrowsNaming(() => (d[key] = 0), RangeError, name);
          assertThrowsNaming(() => (d[key] = -3), RangeError, name);
          assertThrowsNaming(() => (d[key] = 2 ** 31), RangeError, name);
          assertThrowsNaming(() => (d[key] = 1.5), TypeError, name);
          assertThrowsNaming(() => (d[key] = notNumber('4')), TypeError, name);
          assertThrowsNaming(() => (d[key] = notNumber(null)), TypeError, name);
        }
        assert.equal(d[name], 1, 'a rejected value leaves the old one');
      });
    });
  }

  test('sendOrder of createWritable() and of a writable: a finite number', () => {
    withDatagrams((d) => {
      const w = d.createWritable({ sendOrder: 3 });
      assert.equal(w.sendOrder, 3);
      w.sendOrder = -2.5;
      assert.equal(w.sendOrder, -2.5);
      assert.equal(d.createWritable().sendOrder, 0);
      assert.equal(d.createWritable({}).sendOrder, 0);
      assertThrowsNaming(() => (w.sendOrder = NaN), TypeError, 'sendOrder');
      assertThrowsNaming(() => (w.sendOrder = Infinity), TypeError, 'sendOrder');
      assertThrowsNaming(() => (w.sendOrder = notNumber('1')), TypeError, 'sendOrder');
      assert.equal(w.sendOrder, -2.5);
      assertThrowsNaming(() => d.createWritable({ sendOrder: notNumber('high') }), TypeError, 'sendOrder');
      assertThrowsNaming(
        () => d.createWritable(notNumber('x') as unknown as { sendOrder: number }),
        TypeError,
        'createWritable',
      );
    });
  });

  test('options.datagrams sets the initial values', () => {
    withDatagrams(
      (d) => {
        assert.equal(d.incomingMaxBufferedDatagrams, 3);
        assert.equal(d.outgoingMaxBufferedDatagrams, 5);
        assert.equal(d.incomingMaxAge, 100);
        assert.equal(d.outgoingMaxAge, 200);
      },
      {
        datagrams: {
          incomingMaxBufferedDatagrams: 3,
          outgoingMaxBufferedDatagrams: 5,
          incomingMaxAge: 100,
          outgoingMaxAge: 200,
        },
      },
    );
  });

  test('options.datagrams: bad values throw from both constructors, naming the option', () => {
    const bad: [unknown, ErrorClass, string][] = [
      ['yes', TypeError, 'options.datagrams'],
      [1, TypeError, 'options.datagrams'],
      [{ incomingMaxAge: -1 }, RangeError, 'options.datagrams.incomingMaxAge'],
      [{ outgoingMaxAge: 'x' }, TypeError, 'options.datagrams.outgoingMaxAge'],
      [{ incomingMaxBufferedDatagrams: 0 }, RangeError, 'options.datagrams.incomingMaxBufferedDatagrams'],
      [{ outgoingMaxBufferedDatagrams: 2.5 }, TypeError, 'options.datagrams.outgoingMaxBufferedDatagrams'],
    ];
    for (const [datagrams, Class, name] of bad) {
      assertThrowsNaming(() => new QuicTransport(URL_, { datagrams } as QuicTransportOptions), Class, name);
      assertThrowsNaming(() => new QuicServer({ datagrams } as QuicServerOptions), Class, name);
    }
  });
});
