#![no_main]

use std::sync::OnceLock;

use phonehome::policy::config::Config;
use phonehome::engine::{Engine, Now};
use phonehome::wire::nfqueue::{QueuedPacket, HOOK_FORWARD};

static CONFIG: OnceLock<Config> = OnceLock::new();

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    let cfg = CONFIG.get_or_init(|| {
        Config::parse(
            "config phonehome\n\toption leases '/nonexistent'\n\toption decide_by '3'\n\
             config rule 'x'\n\toption owner 'Xiaomi'\n\toption action 'reject'\n",
            std::path::Path::new("fuzz"),
        )
        .unwrap()
    });
    let mut engine = Engine::new(cfg);
    // The input as one packet, then its halves (later packets of a flow).
    let half = data.len() / 2;
    for (i, payload) in [data, &data[..half], &data[half..]].into_iter().enumerate() {
        let pkt = QueuedPacket {
            id: i as u32,
            hw_protocol: 0x0800,
            hook: HOOK_FORWARD,
            hwaddr: Some([2, 0, 0, 0, 0x77, 2]),
            payload,
            ..Default::default()
        };
        let _ = engine.on_queued(
            &pkt,
            Now {
                mono: 1 + i as u64,
                unix: 1_795_651_200,
                ..Default::default()
            },
        );
    }
    let _ = engine.flow_rows(None);
});
