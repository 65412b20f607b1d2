/**
 * `QuicTransportError`: WebTransportError-shaped fields, their defaults, and the `Symbol.for`
 * brand behind `instanceof`, which must hold across two copies of the package.
 */
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { inspect } from 'node:util';
import { QuicTransportError, type QuicTransportErrorInit } from '../../lib/index.js';

const BRAND = Symbol.for('quichex.QuicTransportError');

describe('QuicTransportError', () => {
  test('defaults: a session error made by user code', () => {
    const e = new QuicTransportError();
    assert.ok(e instanceof Error);
    assert.ok(e instanceof QuicTransportError);
    assert.equal(e.name, 'QuicTransportError');
    assert.equal(e.message, '');
    assert.equal(e.source, 'session');
    assert.equal(e.streamErrorCode, null);
    assert.equal(e.closeCode, null);
    assert.equal(e.reason, '');
    assert.equal(e.code, 'ERR_QUIC_APPLICATION');
    assert.equal('cause' in e, false);
    assert.equal(typeof e.stack, 'string');
    assert.match(e.stack as string, /^QuicTransportError/);
    assert.equal(Object.prototype.toString.call(e), '[object Error]');
  });

  test('every field can be given', () => {
    const cause = new Error('underlying');
    const e = new QuicTransportError('stream reset', {
      source: 'stream',
      streamErrorCode: 42,
      closeCode: 7,
      reason: 'why',
      code: 'ERR_QUIC_STREAM_RESET',
      cause,
    });
    assert.equal(e.message, 'stream reset');
    assert.equal(e.source, 'stream');
    assert.equal(e.streamErrorCode, 42);
    assert.equal(e.closeCode, 7);
    assert.equal(e.reason, 'why');
    assert.equal(e.code, 'ERR_QUIC_STREAM_RESET');
    assert.equal(e.cause, cause);
    assert.match(inspect(e), /stream reset/);
    assert.match(inspect(e), /code: 'ERR_QUIC_STREAM_RESET'/);
  });

  test('codes beyond 2^53 are kept exactly as bigints', () => {
    const big = 2n ** 62n - 1n;
    const e = new QuicTransportError('x', { streamErrorCode: big, closeCode: big });
    assert.equal(e.streamErrorCode, big);
    assert.equal(e.closeCode, big);
  });

  test('explicit null and undefined fields fall back to the defaults', () => {
    const init: QuicTransportErrorInit = {
      streamErrorCode: null,
      closeCode: null,
      source: undefined,
      reason: undefined,
    };
    const e = new QuicTransportError('x', init);
    assert.equal(e.streamErrorCode, null);
    assert.equal(e.closeCode, null);
    assert.equal(e.source, 'session');
    assert.equal(e.reason, '');
  });

  test('a cause of undefined given explicitly is still no cause', () => {
    assert.equal('cause' in new QuicTransportError('x', { cause: undefined }), false);
    // Any other value, even a falsy one, is kept.
    const e = new QuicTransportError('x', { cause: 0 });
    assert.equal('cause' in e, true);
    assert.equal(e.cause, 0);
  });

  test('subclasses are QuicTransportErrors, and keep the ordinary instanceof of their own', () => {
    class Sub extends QuicTransportError {}
    class Other extends QuicTransportError {}
    const e = new Sub('x');
    assert.ok(e instanceof QuicTransportError);
    assert.ok(e instanceof Sub);
    assert.ok(e instanceof Error);
    assert.equal(e instanceof Other, false);
    assert.equal(new QuicTransportError('y') instanceof Sub, false);
  });

  test('null options are no options', () => {
    const e = new QuicTransportError('x', null);
    assert.equal(e.code, 'ERR_QUIC_APPLICATION');
    assert.equal(e.source, 'session');
  });

  test('instanceof is a brand check: an object carrying the Symbol.for brand passes', () => {
    // What an error of a second copy of the package looks like to this one.
    const foreign = new (class extends Error {
      get [BRAND](): true {
        return true;
      }
    })('from another copy');
    assert.ok(foreign instanceof QuicTransportError);
    assert.ok(Object.create(null, { [BRAND]: { get: () => true } }) instanceof QuicTransportError);
    assert.ok(Object.defineProperty({}, BRAND, { value: true }) instanceof QuicTransportError);
    // The brand is on the prototype, not an own enumerable field: it does not leak into JSON.
    const e = new QuicTransportError('x');
    assert.equal(Object.keys(e).includes(BRAND.toString()), false);
    assert.equal(Object.getOwnPropertySymbols(e).includes(BRAND), false);
    assert.equal((e as unknown as Record<symbol, unknown>)[BRAND], true);
  });

  test('instanceof is a brand check: anything without the brand fails', () => {
    for (const value of [
      new Error('plain'),
      new TypeError('type'),
      { name: 'QuicTransportError', code: 'ERR_QUIC_APPLICATION', source: 'session' },
      Object.defineProperty({}, BRAND, { value: 'true' }),
      Object.defineProperty({}, Symbol('quichex.QuicTransportError'), { value: true }),
      null,
      undefined,
      'QuicTransportError',
      42,
      () => {},
    ]) {
      assert.equal(value instanceof QuicTransportError, false, `for ${inspect(value)}`);
    }
  });

  test('instanceof holds across a second, separately loaded copy of the module', async () => {
    // A query string makes the loader evaluate lib/errors.ts again: a distinct class object.
    const url = new URL('../../lib/errors.ts?copy=second', import.meta.url).href;
    const copy = (await import(url)) as { QuicTransportError: typeof QuicTransportError };
    assert.notEqual(copy.QuicTransportError, QuicTransportError, 'the loader returned the same module');
    assert.ok(new copy.QuicTransportError('x') instanceof QuicTransportError);
    assert.ok(new QuicTransportError('y') instanceof copy.QuicTransportError);
    assert.equal(new Error('z') instanceof copy.QuicTransportError, false);
  });
});
