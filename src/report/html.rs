//! The self-contained report page: one HTML file with the report document
//! and the renderer in it, that opens with no network (its Content
//! Security Policy allows none). The renderer is embedded once, gzipped
//! (build.rs); the page inflates it in the browser. The document goes in
//! as JSON in a `<script type="application/json">` with `<`, `>` and `&`
//! escaped, so no name in it can end the element or become markup; the
//! renderer puts every name on the page as text.

/// The page around the document and renderer (`{{...}}` filled here).
const TEMPLATE: &str = include_str!("report.html");

/// The renderer, gzipped by build.rs.
const RENDERER_GZIP: &[u8] = include_bytes!(concat!(env!("OUT_DIR"), "/render.js.gz"));

/// Standard base64 with padding (RFC 4648). Hand-written: twenty lines
/// against a crate, and encoding here rather than at build time keeps the
/// renderer a third smaller in the router's flash.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// JSON text made safe inside a script element: `<`, `>` and `&` become
/// JSON escapes (they can only occur inside strings, where the escape
/// means the same character).
fn script_safe(json: &str) -> String {
    let mut out = String::with_capacity(json.len() + 16);
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            c => out.push(c),
        }
    }
    out
}

/// Text made safe as an HTML element's content (the page title).
fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// The page for a report document given as JSON text.
pub fn page(title: &str, document_json: &str) -> String {
    let title: String = title.chars().take(200).collect();
    // One pass over the template: a `{{` inside the data is never read as
    // a placeholder.
    let mut out = String::with_capacity(TEMPLATE.len() + document_json.len() + 16384);
    let mut rest = TEMPLATE;
    while let Some(at) = rest.find("{{") {
        out.push_str(&rest[..at]);
        let after = &rest[at + 2..];
        let end = after.find("}}").expect("template placeholders are closed");
        match &after[..end] {
            "TITLE" => out.push_str(&html_text(&title)),
            "DATA" => out.push_str(&script_safe(document_json)),
            "RENDERER" => out.push_str(&base64(RENDERER_GZIP)),
            other => unreachable!("unknown placeholder {other}"),
        }
        rest = &after[end + 2..];
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_in_the_document_cannot_leave_their_script_element() {
        let doc = serde_json::json!({"owners": [{"owner": "</script><script>alert(1)</script>"}],
                                     "x": "{{DATA}} & <!--"});
        let json = serde_json::to_string(&doc).unwrap();
        let page = page("a <b> & c", &json);
        assert_eq!(
            page.matches("</script>").count(),
            3,
            "only the page's own three"
        );
        assert!(!page.contains("<!--"));
        assert!(page.contains("<title>a &lt;b&gt; &amp; c</title>"));
        // The escaped text is the same JSON.
        let start = page.find("application/json\">").unwrap() + 18;
        let end = start + page[start..].find("</script>").unwrap();
        let back: serde_json::Value = serde_json::from_str(&page[start..end]).unwrap();
        assert_eq!(back, doc);
        assert!(page.contains(&base64(RENDERER_GZIP)));
        assert_eq!(&RENDERER_GZIP[..2], [0x1f, 0x8b], "gzip");
    }

    #[test]
    fn base64_is_rfc_4648() {
        // RFC 4648 section 10's test vectors.
        for (plain, encoded) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(plain.as_bytes()), encoded);
        }
        assert_eq!(base64(&[0xff, 0xfe, 0xfd]), "//79");
    }
}
