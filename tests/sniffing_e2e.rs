//! Names late in the client's stream, on the real netfilter path: a
//! ClientHello padded to 4 KB before its SNI (one packet each way would not
//! hold it: the kernel hands over the segments whole), the same hello cut
//! into a dozen small segments 50 ms apart while the server ACKs each, and
//! an HTTP request with 300 headers before Host, whole or cut. IPv4 and
//! IPv6. Needs root (CI runs as root).

mod common;

use common::*;

#[test]
#[ignore = "needs root and network namespaces"]
fn names_late_in_the_stream_are_read_and_enforced() {
    let Some(mut net) = network(REJECT_XIAOMI) else {
        return;
    };
    // An HTTP server that reads 300 headers.
    net.start_http_sink(8080);
    for (v4, family) in [(NEUTRAL_IP, "IPv4"), (v6_of(NEUTRAL_IP), "IPv6")] {
        for (port, args) in [
            (443, "--kind tls --pad 4000 --pieces 3"),
            (443, "--kind tls --pad 700 --pieces 12 --delay 50"),
            (8080, "--kind http --headers 300 --pieces 1"),
            (8080, "--kind http --headers 300 --pieces 12 --delay 50"),
        ] {
            let out = net.late_name(v4, port, args);
            assert!(out.starts_with("refused"), "{family} {args}: {out}");
        }
        // The same request for an allowed name gets its answer.
        let out = net.late_name(
            v4,
            8080,
            "--kind http --headers 300 --pieces 12 --delay 50 --name www.google.com",
        );
        assert!(out.starts_with("open"), "{family}: {out}");
    }
    let status = net.cli_json(&["status"]);
    assert_eq!(status["nameless"], 0, "{status:#}");
    let flows = net.cli_json(&["flows"]);
    let rejected = flows
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["verdict"] == "reject" && f["owner"] == "Xiaomi")
        .count();
    assert_eq!(rejected, 8, "{flows:#}");
}
