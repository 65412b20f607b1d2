//! What the peer tells bench/run.ts: one JSON object a line on stdout, each shaped like a
//! `WorkerMessage` of bench/common.ts, and the clock those messages are stamped with.

use std::io::Write;

/// Milliseconds on `CLOCK_MONOTONIC`, the clock of `process.hrtime` in Node on Linux: a start
/// stamped here and an end stamped in another process (of either kind) can be subtracted.
pub fn now() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 * 1e3 + ts.tv_nsec as f64 / 1e6
}

fn line(json: &str) {
    let mut out = std::io::stdout().lock();
    // If run.ts has gone, nobody is left to tell.
    let _ = writeln!(out, "{json}").and_then(|_| out.flush());
}

/// `{ type: 'ready', port, hash }`
pub fn ready(port: u16, hash: &str) {
    line(&format!(
        r#"{{"type":"ready","port":{port},"hash":"{hash}"}}"#
    ));
}

/// `{ type: 'sent', start, bytes }`
pub fn sent(start: f64, bytes: u64) {
    line(&format!(
        r#"{{"type":"sent","start":{start},"bytes":{bytes}}}"#
    ));
}

/// `{ type: 'received', bytes, packets, last }`
pub fn received(bytes: u64, packets: u64, last: f64) {
    line(&format!(
        r#"{{"type":"received","bytes":{bytes},"packets":{packets},"last":{last}}}"#
    ));
}

fn list(values: &[f64]) -> String {
    let list: Vec<String> = values.iter().map(f64::to_string).collect();
    list.join(",")
}

/// `{ type: 'samples', samples }`, in milliseconds.
pub fn samples(samples: &[f64]) {
    line(&format!(
        r#"{{"type":"samples","samples":[{}]}}"#,
        list(samples)
    ));
}

/// `{ type: 'handshakes', count, failed, ms, ttfb }`, times in milliseconds.
pub fn handshakes(failed: usize, ms: f64, ttfb: &[f64]) {
    line(&format!(
        r#"{{"type":"handshakes","count":{},"failed":{failed},"ms":{ms},"ttfb":[{}]}}"#,
        ttfb.len(),
        list(ttfb)
    ));
}
