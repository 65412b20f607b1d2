//! The one place where native failures get their stable string codes.
//!
//! Errors caused by network traffic never reach this module as exceptions: they close the
//! connection they arrived on (quiche does that) and surface later as close information. What
//! is thrown from here are failures of local calls: bad configuration, bad certificates.

use napi::Error;

/// Stable code for each `quiche::Error`. `Done` is control flow and callers handle it before
/// it could get here; it still has a code so that the mapping is total.
pub fn quiche_code(e: &quiche::Error) -> &'static str {
    use quiche::Error::*;
    match e {
        Done => "ERR_QUIC_DONE",
        BufferTooShort => "ERR_QUIC_BUFFER_TOO_SHORT",
        UnknownVersion => "ERR_QUIC_UNKNOWN_VERSION",
        InvalidFrame => "ERR_QUIC_INVALID_FRAME",
        InvalidPacket => "ERR_QUIC_INVALID_PACKET",
        InvalidState => "ERR_QUIC_INVALID_STATE",
        InvalidStreamState(_) => "ERR_QUIC_INVALID_STREAM_STATE",
        InvalidTransportParam => "ERR_QUIC_INVALID_TRANSPORT_PARAM",
        CryptoFail => "ERR_QUIC_CRYPTO_FAIL",
        TlsFail => "ERR_QUIC_TLS_FAIL",
        FlowControl => "ERR_QUIC_FLOW_CONTROL",
        StreamLimit => "ERR_QUIC_STREAM_LIMIT",
        StreamStopped(_) => "ERR_QUIC_STREAM_STOPPED",
        StreamReset(_) => "ERR_QUIC_STREAM_RESET",
        FinalSize => "ERR_QUIC_FINAL_SIZE",
        CongestionControl => "ERR_QUIC_CONGESTION_CONTROL",
        IdLimit => "ERR_QUIC_ID_LIMIT",
        OutOfIdentifiers => "ERR_QUIC_OUT_OF_IDENTIFIERS",
        KeyUpdate => "ERR_QUIC_KEY_UPDATE",
        CryptoBufferExceeded => "ERR_QUIC_CRYPTO_BUFFER_EXCEEDED",
        InvalidAckRange => "ERR_QUIC_INVALID_ACK_RANGE",
        OptimisticAckDetected => "ERR_QUIC_OPTIMISTIC_ACK",
        InvalidDcidInitialization => "ERR_QUIC_INVALID_DCID",
        // quiche's Error is non-exhaustive in spirit: new variants land in minor releases.
        #[allow(unreachable_patterns)]
        _ => "ERR_QUIC_INTERNAL",
    }
}

/// A JS exception whose `code` property is `code` (napi-rs puts a custom status there).
pub fn js_error(code: &str, message: impl Into<String>) -> Error<String> {
    Error::new(code.to_string(), message.into())
}

/// A quiche failure of a local call, as a JS exception with its stable code.
pub fn from_quiche(what: &str, e: quiche::Error) -> Error<String> {
    js_error(quiche_code(&e), format!("{what}: {e}"))
}

/// A TLS library failure (bad PEM, key mismatch) as a JS exception.
pub fn tls_error(what: &str, e: impl std::fmt::Display) -> Error<String> {
    js_error("ERR_QUIC_TLS_CONFIG", format!("{what}: {e}"))
}

/// napi-rs functions return `Result<T, Error<String>>` here so the codes above reach JS.
pub type Result<T> = std::result::Result<T, Error<String>>;
