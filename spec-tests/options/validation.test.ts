/**
 * Option and argument validation: a wrong type throws a `TypeError`, a value out of range a
 * `RangeError`, synchronously and naming what was wrong. Constructors that throw open nothing.
 */
import assert from 'node:assert/strict';
import { X509Certificate, createHash, createPrivateKey } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import {
  QuicServer,
  QuicTransport,
  QuicTransportError,
  generateCertificate,
  type QuicServerOptions,
  type QuicTransportOptions,
} from '../../lib/index.js';
import { assertThrowsNaming } from '../helpers/assertions.js';
import { connectPair, echo, readAll, startServer, within } from '../helpers/pair.js';

/** A URL nothing is contacted at: every construction below throws before connecting. */
const URL_ = 'quic://127.0.0.1:4433';

function client(options: unknown): () => QuicTransport {
  return () => new QuicTransport(URL_, options as QuicTransportOptions);
}

function server(options: unknown): () => QuicServer {
  return () => new QuicServer(options as QuicServerOptions);
}

/** Integer options shared by both sides: [name, min, max]. */
const INTEGERS: [string, number, number][] = [
  ['maxIdleTimeout', 0, 2 ** 31 - 1],
  ['handshakeTimeout', 1, 2 ** 31 - 1],
  ['initialMaxData', 0, Number.MAX_SAFE_INTEGER],
  ['initialMaxStreamDataBidiLocal', 0, Number.MAX_SAFE_INTEGER],
  ['initialMaxStreamDataBidiRemote', 0, Number.MAX_SAFE_INTEGER],
  ['initialMaxStreamDataUni', 0, Number.MAX_SAFE_INTEGER],
  ['initialMaxStreamsBidi', 0, 65_536],
  ['initialMaxStreamsUni', 0, 65_536],
  // A ceiling of 0 would stop the window's updates (the transfer stalled after the first window).
  ['maxConnectionWindow', 1, Number.MAX_SAFE_INTEGER],
  ['maxStreamWindow', 1, Number.MAX_SAFE_INTEGER],
  ['maxUdpPayloadSize', 1200, 65527],
];

const BOOLEANS = ['disableActiveMigration', 'grease'];

/** The options message pattern, e.g. /options\.maxIdleTimeout\b/. */
function named(name: string): RegExp {
  return new RegExp(`options\\.${name.replace(/[[\]]/g, '\\$&')}(?![A-Za-z])`);
}

describe('transport options (client and server)', () => {
  for (const [side, make] of [
    ['client', client],
    ['server', server],
  ] as const) {
    for (const [name, min, max] of INTEGERS) {
      test(`${side}: ${name} must be an integer in ${min}…${max}`, () => {
        for (const bad of ['100', true, null, {}, [], 10n])
          assertThrowsNaming(make({ [name]: bad }), TypeError, named(name));
        // Not an integer: a type error or a range error, but always one that names the option.
        for (const bad of [1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
          assertThrowsNaming(make({ [name]: bad }), [TypeError, RangeError], named(name));
        }
        assertThrowsNaming(make({ [name]: min - 1 }), RangeError, named(name));
        if (max + 1 <= Number.MAX_SAFE_INTEGER) assertThrowsNaming(make({ [name]: max + 1 }), RangeError, named(name));
        assertThrowsNaming(make({ [name]: 2 ** 64 }), RangeError, named(name));
        if (side === 'server') {
          // The bounds themselves are accepted (a server binds nothing until listen()).
          new QuicServer({ [name]: min });
          new QuicServer({ [name]: max });
        }
      });
    }

    for (const name of BOOLEANS) {
      test(`${side}: ${name} must be a boolean`, () => {
        for (const bad of ['true', 1, 0, null, {}]) assertThrowsNaming(make({ [name]: bad }), TypeError, named(name));
      });
    }

    test(`${side}: protocols must be a non-empty array of 1–255-byte strings`, () => {
      for (const bad of ['test', 5, null, {}])
        assertThrowsNaming(make({ protocols: bad }), TypeError, named('protocols'));
      assertThrowsNaming(make({ protocols: [] }), [TypeError, RangeError], named('protocols'));
      for (const bad of [[1], ['ok', null], [['nested']]]) {
        assertThrowsNaming(make({ protocols: bad }), TypeError, named('protocols'));
      }
      for (const bad of [[''], ['x'.repeat(256)], ['ok', 'é'.repeat(128)]]) {
        assertThrowsNaming(make({ protocols: bad }), RangeError, named('protocols'));
      }
      if (side === 'server') new QuicServer({ protocols: ['x'.repeat(255), 'é'.repeat(127)] });
    });

    test(`${side}: congestionControl must be a known algorithm or hint`, () => {
      for (const bad of [1, null, {}, true])
        assertThrowsNaming(make({ congestionControl: bad }), TypeError, named('congestionControl'));
      for (const bad of ['vegas', 'CUBIC', ''])
        assertThrowsNaming(make({ congestionControl: bad }), RangeError, named('congestionControl'));
      if (side === 'server') {
        for (const ok of ['cubic', 'reno', 'bbr2', 'default', 'throughput', 'low-latency'] as const) {
          new QuicServer({ congestionControl: ok });
        }
      }
    });

    test(`${side}: options must be an object`, () => {
      for (const bad of ['x', 5, true]) assertThrowsNaming(make(bad), TypeError, /options/);
    });
  }
});

describe('client options', () => {
  test('serverCertificateHashes: an array of { algorithm: "sha-256", value: 32 bytes }', () => {
    const name = /options\.serverCertificateHashes/;
    const value = new Uint8Array(32);
    for (const bad of ['x', {}, 5, { algorithm: 'sha-256', value }]) {
      assertThrowsNaming(client({ serverCertificateHashes: bad }), TypeError, name);
    }
    for (const bad of [null, 'x', { value }, { algorithm: 'sha-1', value }, { algorithm: 'SHA-256', value }]) {
      assertThrowsNaming(client({ serverCertificateHashes: [bad] }), TypeError, name);
    }
    for (const bad of [undefined, 'x'.repeat(32), Array(32).fill(0), 5]) {
      assertThrowsNaming(client({ serverCertificateHashes: [{ algorithm: 'sha-256', value: bad }] }), TypeError, name);
    }
    for (const bad of [new Uint8Array(31), new Uint8Array(33), new ArrayBuffer(0)]) {
      assertThrowsNaming(client({ serverCertificateHashes: [{ algorithm: 'sha-256', value: bad }] }), RangeError, name);
    }
    // The index of the bad entry is named.
    assertThrowsNaming(
      client({
        serverCertificateHashes: [
          { algorithm: 'sha-256', value },
          { algorithm: 'sha-256', value: new Uint8Array(1) },
        ],
      }),
      RangeError,
      /options\.serverCertificateHashes\[1\]/,
    );
  });

  test('ca: PEM text, bytes or a readable file path', () => {
    for (const bad of [5, null, {}, true]) assertThrowsNaming(client({ ca: bad }), TypeError, named('ca'));
    assertThrowsNaming(client({ ca: ['-----BEGIN CERTIFICATE-----', 5] }), TypeError, /options\.ca\[1\]/);
    assertThrowsNaming(client({ ca: '/nonexistent/quichex/ca.pem' }), TypeError, named('ca'));
    assertThrowsNaming(client({ ca: [] }), TypeError, named('ca'));
  });

  test('serverName: a non-empty string', () => {
    for (const bad of ['', 5, null, {}])
      assertThrowsNaming(client({ serverName: bad }), TypeError, named('serverName'));
  });

  test('dangerouslyAcceptAnyCertificate: a boolean', () => {
    for (const bad of ['yes', 1, null]) {
      assertThrowsNaming(
        client({ dangerouslyAcceptAnyCertificate: bad }),
        TypeError,
        named('dangerouslyAcceptAnyCertificate'),
      );
    }
  });

  test('a ca that is a file but not PEM fails the connection with ERR_QUIC_TLS_CONFIG', async () => {
    const t = new QuicTransport(URL_, { ca: Buffer.from('not a certificate') });
    const check = (e: unknown): true => {
      assert.ok(e instanceof QuicTransportError);
      assert.equal(e.code, 'ERR_QUIC_TLS_CONFIG');
      return true;
    };
    await within(5000, assert.rejects(t.ready, check), 'ready');
    await within(5000, assert.rejects(t.closed, check), 'closed');
  });
});

describe('server options', () => {
  test('host: an IPv4 or IPv6 address', () => {
    for (const bad of [5, true, {}, null]) assertThrowsNaming(server({ host: bad }), TypeError, named('host'));
    for (const bad of ['localhost', '', '127.0.0.256', '[::1]'])
      assertThrowsNaming(server({ host: bad }), TypeError, named('host'));
  });

  test('port: an integer in 0…65535', () => {
    for (const bad of ['4433', null, 1.5])
      assertThrowsNaming(server({ port: bad }), [TypeError, RangeError], named('port'));
    for (const bad of [-1, 65536]) assertThrowsNaming(server({ port: bad }), RangeError, named('port'));
  });

  test('maxConnections: an integer in 1…2^32-1', () => {
    for (const bad of ['1', null, true])
      assertThrowsNaming(server({ maxConnections: bad }), TypeError, named('maxConnections'));
    for (const bad of [0, -1, 2 ** 32])
      assertThrowsNaming(server({ maxConnections: bad }), RangeError, named('maxConnections'));
    new QuicServer({ maxConnections: 1 });
    new QuicServer({ maxConnections: 2 ** 32 - 1 });
  });

  test('retry: a boolean', () => {
    for (const bad of ['true', 1, null]) assertThrowsNaming(server({ retry: bad }), TypeError, named('retry'));
  });

  test('statelessResetKey: a Uint8Array of 16–1024 bytes', () => {
    for (const bad of ['secret', 42, null, new ArrayBuffer(32), [1, 2, 3]])
      assertThrowsNaming(server({ statelessResetKey: bad }), TypeError, named('statelessResetKey'));
    for (const bad of [new Uint8Array(15), new Uint8Array(0), Buffer.alloc(1025)])
      assertThrowsNaming(server({ statelessResetKey: bad }), RangeError, named('statelessResetKey'));
    new QuicServer({ statelessResetKey: new Uint8Array(16) });
    new QuicServer({ statelessResetKey: Buffer.alloc(1024, 1) });
  });

  test('cert and key: given together, as PEM, bytes or a readable path', () => {
    const { cert, key } = generateCertificate();
    assertThrowsNaming(server({ cert }), TypeError, /options\.(cert|key)/);
    assertThrowsNaming(server({ key }), TypeError, /options\.(cert|key)/);
    assertThrowsNaming(server({ cert: 5, key }), TypeError, named('cert'));
    assertThrowsNaming(server({ cert, key: {} }), TypeError, named('key'));
    assertThrowsNaming(server({ cert: '/nonexistent/quichex/cert.pem', key }), TypeError, named('cert'));
    new QuicServer({ cert, key });
    new QuicServer({ cert: Buffer.from(cert), key: Buffer.from(key) });
  });

  test('a key that does not match the certificate makes listen() reject with ERR_QUIC_TLS_CONFIG', async () => {
    const a = generateCertificate();
    const b = generateCertificate();
    const s = new QuicServer({ host: '127.0.0.1', port: 0, cert: a.cert, key: b.key });
    await assert.rejects(s.listen(), (e: unknown) => {
      assert.ok(e instanceof QuicTransportError);
      assert.equal(e.code, 'ERR_QUIC_TLS_CONFIG');
      return true;
    });
    await s.close();
  });

  test('a server given cert and key serves that certificate', async () => {
    const generated = generateCertificate(['localhost', '127.0.0.1'], 3);
    const s = await startServer({ cert: generated.cert, key: generated.key });
    try {
      assert.deepEqual(s.certificateHashes, [generated.hash]);
      const { client } = await within(5000, connectPair(s, { serverCertificateHashes: [generated.hash] }), 'handshake');
      client.close();
      await within(5000, client.closed, 'closed');
    } finally {
      await s.close();
    }
  });
});

describe('new QuicTransport(url): the URL', () => {
  test('must be a string or a URL', () => {
    for (const bad of [undefined, null, 5, {}, ['quic://127.0.0.1:1']]) {
      assert.throws(() => new QuicTransport(bad as unknown as string), TypeError);
    }
  });

  test('must parse, use quic:, name a host and no fragment or credentials', () => {
    for (const bad of [
      '',
      'not a url',
      '127.0.0.1:4433',
      'http://127.0.0.1:4433',
      'https://127.0.0.1:4433',
      'quic://',
      'quic://:4433',
      'quic://127.0.0.1:4433#frag',
      'quic://user:pw@127.0.0.1:4433',
      'quic://127.0.0.1:65536',
      'quic://127.0.0.1:99999',
      'quic://127.0.0.1:-1',
      'quic://[::1:4433',
    ]) {
      assert.throws(() => new QuicTransport(bad), TypeError, `for ${JSON.stringify(bad)}`);
    }
  });

  test('an empty fragment ("#") is a fragment too', () => {
    let t: QuicTransport | undefined;
    try {
      assert.throws(() => (t = new QuicTransport('quic://127.0.0.1:4433/#', { handshakeTimeout: 100 })), TypeError);
    } finally {
      t?.close();
    }
  });

  test('port 0 is not a destination: TypeError at construction', () => {
    let t: QuicTransport | undefined;
    try {
      assert.throws(() => (t = new QuicTransport('quic://127.0.0.1:0')), TypeError);
    } finally {
      t?.close();
    }
  });

  test('a path or a query is refused: raw QUIC has nowhere to send them', () => {
    for (const bad of ['quic://127.0.0.1:4433/some/path', 'quic://127.0.0.1:4433?x=1', 'quic://127.0.0.1:4433/?']) {
      assert.throws(() => new QuicTransport(bad), /path or query/, `for ${bad}`);
    }
    // A bare trailing slash is how URL serializes no path at all.
    const t = new QuicTransport('quic://127.0.0.1:4433/', { handshakeTimeout: 100 });
    t.close();
  });

  test('URL errors come before option errors and open nothing', () => {
    // A bad URL with bad options: the URL is checked first; nothing to close either way.
    assert.throws(() => new QuicTransport('http://x', { maxIdleTimeout: -1 }), TypeError);
  });
});

/**
 * One echo round trip (the peer runs `echo`). It also confirms the handshake before the tests close: closing the
 * instant `ready` resolves is a separate bug (lifecycle/clean-exit.test.ts, 'close-on-ready').
 */
async function roundTrip(client: QuicTransport): Promise<void> {
  const { readable, writable } = await client.createBidirectionalStream();
  const writer = writable.getWriter();
  await writer.write(new TextEncoder().encode('ping'));
  await writer.close();
  assert.equal((await within(5000, readAll(readable), 'echo')).toString(), 'ping');
}

describe('close(options)', () => {
  let s: QuicServer;
  before(async () => {
    s = await startServer();
  });
  after(() => s.close());

  test('closeCode must be an integer 0…2^62-1; reason a string', async () => {
    const { client, session } = await within(5000, connectPair(s), 'handshake');
    echo(session);
    await roundTrip(client);
    for (const bad of [-1, 1.5, Number.NaN, 2 ** 62, -1n, 2n ** 62n, Number.MAX_SAFE_INTEGER + 2]) {
      assert.throws(() => client.close({ closeCode: bad }), RangeError, `closeCode ${String(bad)}`);
    }
    assert.throws(() => client.close({ closeCode: '1' as unknown as number }), RangeError);
    assert.throws(() => client.close({ reason: 5 as unknown as string }), TypeError);
    // None of those closed anything.
    await roundTrip(client);
    // The largest code is accepted and reaches the peer as sent.
    client.close({ closeCode: 2n ** 62n - 1n, reason: 'max' });
    assert.deepEqual(await within(5000, client.closed, 'closed'), { closeCode: 2n ** 62n - 1n, reason: 'max' });
    assert.deepEqual(await within(5000, session.closed, 'peer closed'), { closeCode: 2n ** 62n - 1n, reason: 'max' });
    // Arguments are still checked once closed.
    assert.throws(() => client.close({ closeCode: -1 }), RangeError);
  });

  test('a reason longer than 1024 bytes is cut at a character boundary', async () => {
    const { client, session } = await within(5000, connectPair(s), 'handshake');
    echo(session);
    await roundTrip(client);
    const reason = 'é'.repeat(600); // 1200 bytes of UTF-8
    client.close({ closeCode: 9, reason });
    const cut = 'é'.repeat(512);
    assert.deepEqual(await within(5000, client.closed, 'closed'), { closeCode: 9, reason: cut });
    assert.deepEqual(await within(5000, session.closed, 'peer closed'), { closeCode: 9, reason: cut });
  });
});

describe('generateCertificate(names, days)', () => {
  test('checks its arguments', () => {
    for (const bad of ['localhost', [], [''], [5], ['ok', null], null]) {
      assert.throws(() => generateCertificate(bad as unknown as string[]), TypeError, `names ${JSON.stringify(bad)}`);
    }
    for (const bad of ['3', 1.5, Number.NaN, null]) {
      assert.throws(
        () => generateCertificate(['localhost'], bad as unknown as number),
        TypeError,
        `days ${String(bad)}`,
      );
    }
    for (const bad of [0, -1, 15, 365])
      assert.throws(() => generateCertificate(['localhost'], bad), RangeError, `days ${bad}`);
  });

  test('a name that cannot go in a certificate is a QuicTransportError, not a crash', () => {
    assert.throws(
      () => generateCertificate(['ünïcode.example']),
      (e: unknown) => e instanceof QuicTransportError && e.code === 'ERR_QUIC_TLS_CONFIG',
    );
  });

  test('makes a P-256 certificate for the names, valid for the days, with its SHA-256', () => {
    for (const days of [1, 14]) {
      const g = generateCertificate(['localhost', '127.0.0.1', '::1', 'example.test'], days);
      const x = new X509Certificate(g.cert);
      assert.equal(g.hash.algorithm, 'sha-256');
      assert.deepEqual(Buffer.from(g.hash.value), createHash('sha256').update(x.raw).digest());
      assert.match(g.key, /-----BEGIN PRIVATE KEY-----/);
      assert.ok(x.checkPrivateKey(createPrivateKey(g.key)));
      assert.equal(x.publicKey.asymmetricKeyType, 'ec');
      assert.equal(x.publicKey.asymmetricKeyDetails?.namedCurve, 'prime256v1');
      assert.ok(x.checkHost('localhost'));
      assert.ok(x.checkHost('example.test'));
      assert.ok(x.checkIP('127.0.0.1'));
      assert.ok(x.checkIP('::1'));
      assert.equal(x.checkHost('other.test'), undefined);
      const from = Date.parse(x.validFrom);
      const to = Date.parse(x.validTo);
      assert.ok(from <= Date.now() && Date.now() < to, 'valid now');
      assert.ok(to - from <= days * 86_400_000, `validity ${(to - from) / 86_400_000} days`);
    }
  });

  test('the default certificate names localhost, 127.0.0.1 and ::1 for 14 days', () => {
    const x = new X509Certificate(generateCertificate().cert);
    assert.ok(x.checkHost('localhost'));
    assert.ok(x.checkIP('127.0.0.1'));
    assert.ok(x.checkIP('::1'));
    const days = (Date.parse(x.validTo) - Date.parse(x.validFrom)) / 86_400_000;
    assert.ok(days > 13 && days <= 14, `${days} days`);
  });
});
