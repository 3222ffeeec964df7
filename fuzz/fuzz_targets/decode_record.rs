//! Fuzz target: the journal record decoder must never panic, whatever the bytes, and every
//! record it accepts must re-encode to exactly the bytes it was read from.
#![no_main]

use dispatch_core::journal::{self, ScanEnd};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    // Raw bytes as a whole segment, and the same bytes behind a valid header (so the fuzzer
    // does not have to discover the magic before it reaches the record decoder).
    let mut with_header = journal::file_header().to_vec();
    with_header.extend_from_slice(data);
    for buf in [data, &with_header[..]] {
        let scan = journal::scan(buf);
        let valid = scan.end.valid_len(buf.len());
        assert!(valid <= buf.len());
        if let ScanEnd::CorruptMiddle { offset, next_valid, .. } = scan.end {
            assert!(next_valid > offset && next_valid < buf.len());
        }
        for (i, (offset, record)) in scan.records.iter().enumerate() {
            let end = scan.records.get(i + 1).map_or(valid, |(o, _)| *o);
            let again = journal::encode(record).expect("a decoded record re-encodes");
            assert_eq!(&buf[*offset..end], &again[..]);
        }
    }
    // The single-record entry points on arbitrary offsets.
    for offset in [0, 1, 8, data.len() / 2] {
        let _ = journal::decode_at(data, offset);
    }
    let _ = journal::decode_body(data);
});
