/** Certificate generation for servers and tests. */
import { fromNative, native } from './native.js';

/** A generated certificate: PEM text for `cert`/`key`/`ca`, and its hash for pinning. */
export interface GeneratedCertificate {
  cert: string;
  key: string;
  /** For a client's `serverCertificateHashes`. */
  hash: { algorithm: 'sha-256'; value: Uint8Array };
}

/**
 * Generates a self-signed ECDSA P-256 certificate for `names` (DNS names or IP addresses),
 * valid for `days` days (1–14; browsers pin only certificates of at most 14 days).
 */
export function generateCertificate(
  names: string[] = ['localhost', '127.0.0.1', '::1'],
  days = 14,
): GeneratedCertificate {
  if (!Array.isArray(names) || names.length === 0 || names.some((n) => typeof n !== 'string' || n === '')) {
    throw new TypeError('names must be a non-empty array of non-empty strings');
  }
  if (!Number.isInteger(days)) throw new TypeError(`days must be an integer, got ${String(days)}`);
  if (days < 1 || days > 14) throw new RangeError(`days must be between 1 and 14, got ${days}`);
  try {
    const c = native.generateCertificate(names, days);
    return { cert: c.cert, key: c.key, hash: { algorithm: 'sha-256', value: new Uint8Array(c.hash) } };
  } catch (e) {
    throw fromNative(e, 'ERR_QUIC_TLS_CONFIG');
  }
}
