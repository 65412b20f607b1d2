/**
 * `QuicTransportError`: the one error class quichex throws or rejects with, shaped like the
 * W3C `WebTransportError` (https://w3c.github.io/webtransport/#web-transport-error-interface)
 * plus a stable string `code`.
 */

const kBrand = Symbol.for('quichex.QuicTransportError');

/** Stable error codes. Listed with their meaning in the README. */
export type QuicErrorCode =
  | 'ERR_QUIC_HANDSHAKE'
  | 'ERR_QUIC_CERTIFICATE'
  | 'ERR_QUIC_PROTOCOL_MISMATCH'
  | 'ERR_QUIC_HANDSHAKE_TIMEOUT'
  | 'ERR_QUIC_CONNECTION_REFUSED'
  | 'ERR_QUIC_IDLE_TIMEOUT'
  | 'ERR_QUIC_STATELESS_RESET'
  | 'ERR_QUIC_TRANSPORT'
  | 'ERR_QUIC_SESSION_CLOSED'
  | 'ERR_QUIC_STREAM_RESET'
  | 'ERR_QUIC_STREAM_STOPPED'
  | 'ERR_QUIC_STREAM_CLOSED'
  | 'ERR_QUIC_STREAM_LIMIT'
  | 'ERR_QUIC_DATAGRAMS_DISABLED'
  | 'ERR_QUIC_ABORTED'
  | 'ERR_QUIC_LOG_FILE'
  | 'ERR_QUIC_SOCKET'
  | 'ERR_QUIC_DNS'
  | 'ERR_QUIC_TLS_CONFIG'
  | 'ERR_QUIC_INTERNAL'
  | 'ERR_QUIC_APPLICATION';

/** An application error code: a `number` when it is a safe integer, else a `bigint`. */
export type QuicCode = number | bigint;

/** Options of the `QuicTransportError` constructor. */
export interface QuicTransportErrorInit {
  /** `'stream'` for errors of one stream, `'session'` (default) for the whole connection. */
  source?: 'stream' | 'session';
  /** The application code of RESET_STREAM / STOP_SENDING; sent when used to abort. */
  streamErrorCode?: QuicCode | null;
  /** The CONNECTION_CLOSE code that ended the session, if any. */
  closeCode?: QuicCode | null;
  /** The CONNECTION_CLOSE reason that ended the session. */
  reason?: string;
  /** Stable string code. Defaults to `ERR_QUIC_APPLICATION` (an error made by user code). */
  code?: QuicErrorCode;
  /** The underlying error. */
  cause?: unknown;
}

/** The error quichex rejects and throws with. `instanceof` holds across package copies. */
export class QuicTransportError extends Error {
  /** `'stream'` or `'session'`. */
  readonly source: 'stream' | 'session';
  /** Stream error code (RESET_STREAM / STOP_SENDING), or `null`. */
  readonly streamErrorCode: QuicCode | null;
  /** Session close code, or `null`. */
  readonly closeCode: QuicCode | null;
  /** Session close reason (may be empty). */
  readonly reason: string;
  /** Stable string code. */
  readonly code: QuicErrorCode;

  constructor(message = '', options?: QuicTransportErrorInit | null) {
    const init = options ?? {};
    super(message, init.cause === undefined ? undefined : { cause: init.cause });
    this.name = 'QuicTransportError';
    this.source = init.source ?? 'session';
    this.streamErrorCode = init.streamErrorCode ?? null;
    this.closeCode = init.closeCode ?? null;
    this.reason = init.reason ?? '';
    this.code = init.code ?? 'ERR_QUIC_APPLICATION';
  }

  /** The brand check behind `instanceof`, so two copies of quichex agree. */
  get [kBrand](): true {
    return true;
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    // A subclass of the user's keeps the ordinary check: its instances are its own.
    if (this !== QuicTransportError) return Function.prototype[Symbol.hasInstance].call(this, value);
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[kBrand] === true;
  }
}

/** Largest application error code QUIC can carry (RFC 9000 §16: 62-bit varint). */
export const MAX_QUIC_CODE = (1n << 62n) - 1n;

/** A code from the wire as a number when exact, else a bigint. */
export function codeFromWire(code: bigint): QuicCode {
  return code <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(code) : code;
}

/**
 * The code to send when `reason` aborts or cancels a stream: its `streamErrorCode` when it has
 * a valid one (as W3C WebTransport does), 0 otherwise.
 */
export function streamCodeOf(reason: unknown): bigint {
  const code = (reason as { streamErrorCode?: unknown } | null | undefined)?.streamErrorCode;
  if (typeof code === 'number' && Number.isSafeInteger(code) && code >= 0) return BigInt(code);
  if (typeof code === 'bigint' && code >= 0n && code <= MAX_QUIC_CODE) return code;
  return 0n;
}
