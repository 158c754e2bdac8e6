//! Fuzzes the report parser: no input may panic, and any report the parser
//! accepts must rebuild to the same bytes (an inner-only report's ignored
//! MD length aside). Also runs the coalesced-report iterator and the
//! INT-MD block parser over the same input.

#![no_main]

use bytes::{Bytes, BytesMut};
use libfuzzer_sys::fuzz_target;
use solyx_int::{IntMd, RepType, Report};

fn touch(r: &Report) -> u64 {
    let mut acc = u64::from(r.group().node_id);
    if let Some(n) = r.node_metadata() {
        acc ^= u64::from(n.hop_latency().unwrap_or(0));
        acc ^= n.egress_timestamp().unwrap_or(0);
        acc ^= n.domain_specific().len() as u64;
        acc ^= n.queue_drop_reason().map_or(0, |(q, d)| u64::from(q) + u64::from(d));
    }
    for h in r.hops().chain(r.path()) {
        let m = h.to_metadata();
        acc ^= u64::from(m.switch_id.unwrap_or(0));
        acc ^= m.ingress_timestamp.unwrap_or(0);
        acc ^= h.domain_specific().len() as u64;
    }
    acc ^ r.payload().len() as u64
}

fuzz_target!(|data: &[u8]| {
    let bytes = Bytes::copy_from_slice(data);

    if let Ok(r) = Report::parse(bytes.clone()) {
        std::hint::black_box(touch(&r));
        if r.header().rep_type == RepType::Int || r.md_length_words() == 0 {
            let mut again = BytesMut::new();
            r.to_builder()
                .write(&mut again)
                .expect("a parsed report rebuilds");
            assert_eq!(&again[..], data, "rebuilt bytes differ");
        }
    }

    if let Ok(reports) = Report::parse_coalesced(bytes.clone()) {
        for r in reports.flatten() {
            std::hint::black_box(touch(&r));
        }
    }

    if let Ok(md) = IntMd::parse(data) {
        let mut again = BytesMut::new();
        md.to_builder()
            .write(&mut again)
            .expect("a parsed INT-MD block rebuilds");
        assert_eq!(&again[..], &data[..md.encoded_len()]);
    }
});
