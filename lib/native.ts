/**
 * The one module that imports the native binding. Everything native crosses into JS here:
 * native exceptions and close information become `QuicTransportError`s in one place.
 */
import { createRequire } from 'node:module';
import type * as Binding from '../binding/index.js';
import { QuicTransportError, codeFromWire, type QuicErrorCode } from './errors.js';

export type { BindingConfig, BindingEndpoint, BindingCloseInfo } from '../binding/index.js';

function load(): typeof Binding {
  const require = createRequire(import.meta.url);
  try {
    return require('../binding/index.js') as typeof Binding;
  } catch (cause) {
    throw new Error(
      'quichex: no native binding for this platform was found. Build it from source with ' +
        '`npm run build:native` in the quichex package (needs Rust, cmake, a C++ compiler and ' +
        'libclang; on Debian/Ubuntu: apt-get install cmake g++ libclang-dev).',
      { cause },
    );
  }
}

export const native = load();

/** The counters `BindingEndpoint.stats` writes, in its order (binding/src/stats.rs). */
const STATS_FIELDS = [
  'packetsSent',
  'packetsReceived',
  'packetsLost',
  'packetsSpuriouslyLost',
  'packetsRetransmitted',
  'bytesSent',
  'bytesReceived',
  'bytesLost',
  'bytesAcknowledged',
  'streamBytesRetransmitted',
  'datagramsSent',
  'datagramsReceived',
  'datagramsLost',
  'datagramsDroppedNative',
  'smoothedRtt',
  'rttVariation',
  'minRtt',
  'maxRtt',
  'congestionWindow',
  'pathMtu',
  'deliveryRate',
  'ptoCount',
  'paths',
  'streamsResetLocal',
  'streamsResetRemote',
  'streamsStoppedLocal',
  'streamsStoppedRemote',
] as const;

/** A connection's counters by name (see binding/src/stats.rs for units). */
export type BindingStats = Record<(typeof STATS_FIELDS)[number], number>;

/** A snapshot of connection `handle`'s counters, as quiche has them now. */
export function snapshotStats(endpoint: Binding.BindingEndpoint, handle: number): Float64Array {
  const out = new Float64Array(STATS_FIELDS.length);
  endpoint.stats(handle, out);
  return out;
}

/** A snapshot's counters by name. */
export function statsByName(snapshot: Float64Array): BindingStats {
  const stats = {} as BindingStats;
  STATS_FIELDS.forEach((name, i) => (stats[name] = snapshot[i]));
  return stats;
}

/** Event kinds from `BindingEndpoint.pollEvents`; mirrors `binding/src/connection.rs`. */
export const Ev = {
  New: 1,
  Established: 2,
  Readable: 3,
  Writable: 4,
  Streams: 5,
  Draining: 6,
  Closed: 7,
  Datagrams: 8,
  DatagramsWritable: 9,
  Refused: 10,
} as const;

/** Results of `streamRecv` / `streamSend` below zero. */
export const StreamResult = {
  Blocked: -1,
  PeerAborted: -2,
  Gone: -3,
} as const;

/** A native exception (whose `code` is a stable string) as a `QuicTransportError`. */
export function fromNative(e: unknown, fallback: QuicErrorCode = 'ERR_QUIC_INTERNAL'): QuicTransportError {
  if (!(e instanceof Error)) return new QuicTransportError(String(e), { code: fallback });
  const code = (e as { code?: unknown }).code;
  const known = typeof code === 'string' && code.startsWith('ERR_QUIC_') && code !== 'ERR_QUIC_DONE';
  return new QuicTransportError(e.message, { code: known ? (code as QuicErrorCode) : fallback, cause: e });
}

/** How a session ended: clean (`closeCode`/`reason`) or with an error. */
export type CloseResult = { closeCode: number | bigint; reason: string } | QuicTransportError;

const TLS_ALERT_BASE = 0x100n;
const NO_APPLICATION_PROTOCOL = 120n;
const CONNECTION_REFUSED = 0x2n;
/**
 * APPLICATION_ERROR: an application's close sent before the 1-RTT keys existed, which must not
 * carry the application's code or reason (RFC 9000 §10.2.3). A close like any other.
 */
const APPLICATION_ERROR = 0xcn;
/** TLS alerts that mean "your certificate was not accepted" (RFC 8446 §6.2). */
const CERTIFICATE_ALERTS = new Set([42n, 43n, 44n, 45n, 46n, 48n, 116n]);

/** Turns native close information into the session's outcome. */
export function closeResult(info: Binding.BindingCloseInfo): CloseResult {
  const reason = info.reason.toString('utf8');
  const closeCode = codeFromWire(info.code);
  if (info.source === 'reset') {
    return new QuicTransportError('the peer no longer has this connection (it answered with a stateless reset)', {
      code: 'ERR_QUIC_STATELESS_RESET',
    });
  }
  if (info.source === 'idle' || info.source === 'none') {
    return info.established
      ? new QuicTransportError('the connection timed out (no packets within maxIdleTimeout)', {
          code: 'ERR_QUIC_IDLE_TIMEOUT',
        })
      : new QuicTransportError('the handshake timed out: no answer from the peer', {
          code: 'ERR_QUIC_HANDSHAKE_TIMEOUT',
        });
  }
  if (info.isApp || info.code === 0n) return { closeCode, reason };
  if (info.code === APPLICATION_ERROR) return { closeCode: 0, reason };
  const by = info.source === 'peer' ? 'the peer' : 'this endpoint';
  const init = { closeCode, reason };
  if (info.code === CONNECTION_REFUSED) {
    return new QuicTransportError(`connection refused by ${by}${reason ? `: ${reason}` : ''}`, {
      ...init,
      code: 'ERR_QUIC_CONNECTION_REFUSED',
    });
  }
  if (info.code >= TLS_ALERT_BASE && info.code < TLS_ALERT_BASE + 0x100n) {
    const alert = info.code - TLS_ALERT_BASE;
    if (alert === NO_APPLICATION_PROTOCOL) {
      return new QuicTransportError('no application protocol (ALPN) in common with the peer', {
        ...init,
        code: 'ERR_QUIC_PROTOCOL_MISMATCH',
      });
    }
    if (CERTIFICATE_ALERTS.has(alert)) {
      const whose =
        info.source === 'local' ? "the peer's certificate was rejected" : 'our certificate was rejected by the peer';
      return new QuicTransportError(`TLS handshake failed: ${whose} (alert ${alert})`, {
        ...init,
        code: 'ERR_QUIC_CERTIFICATE',
      });
    }
    return new QuicTransportError(`TLS handshake failed: alert ${alert} from ${by}`, {
      ...init,
      code: 'ERR_QUIC_HANDSHAKE',
    });
  }
  return new QuicTransportError(
    `connection closed by ${by} with transport error 0x${info.code.toString(16)}${reason ? `: ${reason}` : ''}`,
    { ...init, code: 'ERR_QUIC_TRANSPORT' },
  );
}
