//! Connection statistics, read from quiche's `stats()` and the active path's `path_stats()`.

use crate::connection::Conn;

/// How many counters `write` fills in, in the order of `STATS_FIELDS` in lib/native.ts. Times
/// are milliseconds, rates bytes per second, counts plain numbers (exact up to 2^53); a minimum
/// or maximum RTT is -1 before the first sample.
pub const STATS_LEN: usize = 27;

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// Writes a snapshot of `conn`'s counters into `out` (as many as fit). An array rather than an
/// object: a session takes one when it closes, and 27 properties cost more to build than the
/// rest of its close.
pub fn write(conn: &Conn, out: &mut [f64]) {
    let s = conn.q.stats();
    let mut lost_dgrams = 0;
    let mut active = None;
    for p in conn.q.path_stats() {
        lost_dgrams += p.dgram_lost;
        if p.active || active.is_none() {
            active = Some(p);
        }
    }
    let (rtt, rttvar, min_rtt, max_rtt, cwnd, pmtu, rate, pto) =
        active.map_or((0.0, 0.0, -1.0, -1.0, 0.0, 0.0, 0.0, 0.0), |p| {
            (
                ms(p.rtt),
                ms(p.rttvar),
                p.min_rtt.map_or(-1.0, ms),
                p.max_rtt.map_or(-1.0, ms),
                p.cwnd as f64,
                p.pmtu as f64,
                p.delivery_rate as f64,
                p.total_pto_count as f64,
            )
        });
    let values: [f64; STATS_LEN] = [
        s.sent as f64,                        // packetsSent
        s.recv as f64,                        // packetsReceived
        s.lost as f64,                        // packetsLost
        s.spurious_lost as f64,               // packetsSpuriouslyLost
        s.retrans as f64,                     // packetsRetransmitted
        s.sent_bytes as f64,                  // bytesSent
        s.recv_bytes as f64,                  // bytesReceived
        s.lost_bytes as f64,                  // bytesLost
        s.acked_bytes as f64,                 // bytesAcknowledged
        s.stream_retrans_bytes as f64,        // streamBytesRetransmitted
        s.dgram_sent as f64,                  // datagramsSent
        s.dgram_recv as f64,                  // datagramsReceived
        lost_dgrams as f64,                   // datagramsLost (all paths)
        conn.dgram_dropped as f64,            // datagramsDroppedNative (quiche's queue was full)
        rtt,                                  // smoothedRtt
        rttvar,                               // rttVariation
        min_rtt,                              // minRtt
        max_rtt,                              // maxRtt
        cwnd,                                 // congestionWindow
        pmtu,                                 // pathMtu
        rate,                                 // deliveryRate
        pto,                                  // ptoCount
        s.paths_count as f64,                 // paths
        s.reset_stream_count_local as f64,    // streamsResetLocal
        s.reset_stream_count_remote as f64,   // streamsResetRemote
        s.stopped_stream_count_local as f64,  // streamsStoppedLocal
        s.stopped_stream_count_remote as f64, // streamsStoppedRemote
    ];
    let n = out.len().min(STATS_LEN);
    out[..n].copy_from_slice(&values[..n]);
}
