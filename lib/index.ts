/**
 * quichex: QUIC for Node.js with a WebTransport-shaped API over WHATWG streams.
 * @packageDocumentation
 */
export { QuicServer, type QuicCertificateHash } from './server.js';
export {
  QuicTransport,
  type QuicAddress,
  type QuicBidirectionalStream,
  type QuicCloseInfo,
  type QuicCloseOptions,
} from './session.js';
export { QuicTransportError, type QuicCode, type QuicErrorCode, type QuicTransportErrorInit } from './errors.js';
export type {
  CertificateHash,
  PemSource,
  QuicServerOptions,
  QuicTransportOptions,
  TransportOptions,
} from './options.js';
export { generateCertificate, type GeneratedCertificate } from './certificate.js';
