#![no_main]

use std::sync::OnceLock;

// A capture file (pcap or pcapng) through the reader and the whole
// analysis: link layers, IP, DNS, TLS/HTTP/QUIC sniffing, flow ends.
libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    static CONFIG: OnceLock<phonehome::policy::config::Config> = OnceLock::new();
    let cfg = CONFIG.get_or_init(|| {
        phonehome::policy::config::Config::parse(
            "config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n",
            std::path::Path::new("fuzz.conf"),
        )
        .unwrap()
    });
    let mut analyzer = phonehome::cli::analyze::Analyzer::new(cfg, true);
    let _ = phonehome::cli::capture::for_each_packet(data, |p| analyzer.on_packet(p));
    let _ = analyzer.finish(None);
});
