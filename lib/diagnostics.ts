/**
 * `node:diagnostics_channel` events. Every publisher checks `hasSubscribers` first and builds
 * its payload only then: with nobody subscribed an event costs one property read.
 *
 * | channel                     | payload                                                         |
 * |-----------------------------|-----------------------------------------------------------------|
 * | `quichex:session:open`      | `{ session, side }` — a client constructed, or a server accepted an Initial |
 * | `quichex:session:handshake` | `{ session, side, protocol, durationMs }` — `ready` resolved    |
 * | `quichex:session:close`     | `{ session, side, closeInfo?, error? }` — `closed` settled      |
 * | `quichex:stream:open`       | `{ session, streamId, bidirectional, initiator: 'local' \| 'remote' }` |
 * | `quichex:stream:close`      | `{ session, streamId }` — both directions are finished          |
 * | `quichex:stream:reset`      | `{ session, streamId, direction: 'send' \| 'receive', by: 'local' \| 'peer', code }` |
 * | `quichex:datagram:drop`     | `{ session, direction: 'incoming' \| 'outgoing', reason: 'queue-full' \| 'expired' \| 'too-large', count }` |
 * | `quichex:server:accept`     | `{ server, session }` — a session is established and queued for `accept()` |
 * | `quichex:server:reject`     | `{ server, remoteAddress, reason: 'max-connections' }`          |
 */
import diagnostics from 'node:diagnostics_channel';

export const channels = {
  sessionOpen: diagnostics.channel('quichex:session:open'),
  sessionHandshake: diagnostics.channel('quichex:session:handshake'),
  sessionClose: diagnostics.channel('quichex:session:close'),
  streamOpen: diagnostics.channel('quichex:stream:open'),
  streamClose: diagnostics.channel('quichex:stream:close'),
  streamReset: diagnostics.channel('quichex:stream:reset'),
  datagramDrop: diagnostics.channel('quichex:datagram:drop'),
  serverAccept: diagnostics.channel('quichex:server:accept'),
  serverReject: diagnostics.channel('quichex:server:reject'),
} as const;
