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
  type QuicStreamOptions,
  type QuicTransportStats,
} from './session.js';
export { QuicSendStream, type QuicSendStreamStats } from './streams/send-stream.js';
export { QuicReceiveStream, type QuicReceiveStreamStats } from './streams/receive-stream.js';
export {
  QuicDatagramDuplexStream,
  QuicDatagramsWritable,
  type QuicDatagramStats,
  type QuicDatagramsWritableOptions,
} from './streams/datagrams.js';
export { QuicTransportError, type QuicCode, type QuicErrorCode, type QuicTransportErrorInit } from './errors.js';
export type {
  CertificateHash,
  DatagramOptions,
  PemSource,
  QuicServerOptions,
  QuicTransportOptions,
  TransportOptions,
} from './options.js';
export { generateCertificate, type GeneratedCertificate } from './certificate.js';
