//! Embeds the report renderer (the LuCI app's `phonehome/render.js`, one
//! file for both) gzipped: `phonehome report` puts it in its page base64
//! encoded and the browser inflates it (DecompressionStream), so the
//! router binary holds the compressed text once and no compressor.

use std::io::Write;

const RENDERER: &str =
    "openwrt-package/luci-app-phonehome/htdocs/luci-static/resources/phonehome/render.js";

fn main() {
    println!("cargo:rerun-if-changed={RENDERER}");
    println!("cargo:rerun-if-changed=src/report/report.html");
    let js = std::fs::read(RENDERER).unwrap_or_else(|e| {
        panic!("{RENDERER}: {e} (the report renderer, embedded in the binary)")
    });
    let mut gz = flate2::GzBuilder::new()
        .mtime(0)
        .write(Vec::new(), flate2::Compression::best());
    gz.write_all(&js).expect("gzip to memory");
    let gz = gz.finish().expect("gzip to memory");
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("OUT_DIR"));
    std::fs::write(out.join("render.js.gz"), gz).expect("write OUT_DIR/render.js.gz");
}
