//! The Gofer message decoder on arbitrary bytes: it must never panic, and whatever it
//! accepts must encode back to the same bytes (the encoding is canonical).
#![no_main]

use gofer::protocol::{Request, Response};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(req) = Request::decode(data) {
        assert_eq!(req.encode().expect("a decoded request re-encodes"), data);
    }
    if let Ok(resp) = Response::decode(data) {
        assert_eq!(resp.encode().expect("a decoded reply re-encodes"), data);
    }
});
