//! Connection statistics, read from quiche's `stats()` and the active path's `path_stats()`.

use napi_derive::napi;

use crate::connection::Conn;

/// One snapshot of a connection's counters. Times are milliseconds, rates bytes per second;
/// counts are f64 so that JS gets plain numbers (exact up to 2^53).
#[napi(object)]
pub struct BindingStats {
    pub packets_sent: f64,
    pub packets_received: f64,
    pub packets_lost: f64,
    /// Packets declared lost that later turned out to have arrived.
    pub packets_spuriously_lost: f64,
    pub packets_retransmitted: f64,
    pub bytes_sent: f64,
    pub bytes_received: f64,
    pub bytes_lost: f64,
    pub bytes_acknowledged: f64,
    pub stream_bytes_retransmitted: f64,
    pub datagrams_sent: f64,
    pub datagrams_received: f64,
    /// DATAGRAM frames in packets declared lost (all paths).
    pub datagrams_lost: f64,
    /// Received DATAGRAMs that quiche's own queue dropped before JS could take them.
    pub datagrams_dropped_native: f64,
    pub smoothed_rtt: f64,
    pub rtt_variation: f64,
    /// -1 before the first RTT sample.
    pub min_rtt: f64,
    /// -1 before the first RTT sample.
    pub max_rtt: f64,
    pub congestion_window: f64,
    pub path_mtu: f64,
    pub delivery_rate: f64,
    pub pto_count: f64,
    pub paths: f64,
    pub streams_reset_local: f64,
    pub streams_reset_remote: f64,
    pub streams_stopped_local: f64,
    pub streams_stopped_remote: f64,
}

fn ms(d: std::time::Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

impl BindingStats {
    pub fn of(conn: &Conn) -> Self {
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
        BindingStats {
            packets_sent: s.sent as f64,
            packets_received: s.recv as f64,
            packets_lost: s.lost as f64,
            packets_spuriously_lost: s.spurious_lost as f64,
            packets_retransmitted: s.retrans as f64,
            bytes_sent: s.sent_bytes as f64,
            bytes_received: s.recv_bytes as f64,
            bytes_lost: s.lost_bytes as f64,
            bytes_acknowledged: s.acked_bytes as f64,
            stream_bytes_retransmitted: s.stream_retrans_bytes as f64,
            datagrams_sent: s.dgram_sent as f64,
            datagrams_received: s.dgram_recv as f64,
            datagrams_lost: lost_dgrams as f64,
            datagrams_dropped_native: conn.dgram_dropped as f64,
            smoothed_rtt: rtt,
            rtt_variation: rttvar,
            min_rtt,
            max_rtt,
            congestion_window: cwnd,
            path_mtu: pmtu,
            delivery_rate: rate,
            pto_count: pto,
            paths: s.paths_count as f64,
            streams_reset_local: s.reset_stream_count_local as f64,
            streams_reset_remote: s.reset_stream_count_remote as f64,
            streams_stopped_local: s.stopped_stream_count_local as f64,
            streams_stopped_remote: s.stopped_stream_count_remote as f64,
        }
    }
}
