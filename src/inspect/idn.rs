//! Internationalised domain names as they are on the wire: each Unicode
//! label becomes `xn--` + its Punycode (RFC 3492), so a rule written as
//! `bücher.example` matches what DNS, SNI and Host carry
//! (`xn--bcher-kva.example`).
//!
//! Written by hand: the `idna` crate brings Unicode normalization and
//! mapping tables (hundreds of KB on a 16 MB router) for what is, in a
//! config file, one conversion per rule. Limits: labels are lowercased with
//! the standard library's Unicode case mapping, not NFC-normalized nor
//! checked against IDNA2008's disallowed code points; a name typed in a
//! decomposed form would not match, and should be given in its xn-- form.

const BASE: u32 = 36;
const T_MIN: u32 = 1;
const T_MAX: u32 = 26;
const SKEW: u32 = 38;
const DAMP: u32 = 700;
const INITIAL_BIAS: u32 = 72;
const INITIAL_N: u32 = 128;

fn adapt(delta: u32, points: u32, first: bool) -> u32 {
    let mut delta = if first { delta / DAMP } else { delta / 2 };
    delta += delta / points;
    let mut k = 0;
    while delta > ((BASE - T_MIN) * T_MAX) / 2 {
        delta /= BASE - T_MIN;
        k += BASE;
    }
    k + (BASE - T_MIN + 1) * delta / (delta + SKEW)
}

fn digit(d: u32) -> char {
    // 0..=25 → a..z, 26..=35 → 0..9.
    char::from(if d < 26 {
        b'a' + d as u8
    } else {
        b'0' + (d - 26) as u8
    })
}

/// The Punycode of one label (without the `xn--` prefix); None when the
/// label is too long to encode without overflow.
pub fn punycode(label: &str) -> Option<String> {
    let input: Vec<u32> = label.chars().map(u32::from).collect();
    let mut out: String = label.chars().filter(char::is_ascii).collect();
    let basic = out.len() as u32;
    if basic > 0 {
        out.push('-');
    }
    let (mut n, mut delta, mut bias, mut handled) = (INITIAL_N, 0u32, INITIAL_BIAS, basic);
    while (handled as usize) < input.len() {
        let m = input.iter().copied().filter(|c| *c >= n).min()?;
        delta = delta.checked_add((m - n).checked_mul(handled + 1)?)?;
        n = m;
        for &c in &input {
            if c < n {
                delta = delta.checked_add(1)?;
            }
            if c == n {
                let mut q = delta;
                let mut k = BASE;
                loop {
                    let t = if k <= bias {
                        T_MIN
                    } else if k >= bias + T_MAX {
                        T_MAX
                    } else {
                        k - bias
                    };
                    if q < t {
                        break;
                    }
                    out.push(digit(t + (q - t) % (BASE - t)));
                    q = (q - t) / (BASE - t);
                    k += BASE;
                }
                out.push(digit(q));
                bias = adapt(delta, handled + 1, handled == basic);
                delta = 0;
                handled += 1;
            }
        }
        delta = delta.checked_add(1)?;
        n = n.checked_add(1)?;
    }
    Some(out)
}

/// A domain name in its on-the-wire ASCII form: lowercase, Unicode labels
/// as `xn--` Punycode. None when a label cannot be encoded.
pub fn to_ascii(name: &str) -> Option<String> {
    let labels: Option<Vec<String>> = name
        .split('.')
        .map(|label| {
            if label.is_ascii() {
                Some(label.to_ascii_lowercase())
            } else {
                punycode(&label.to_lowercase()).map(|p| format!("xn--{p}"))
            }
        })
        .collect();
    Some(labels?.join("."))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// RFC 3492 section 7.1 samples and the names everyone knows.
    #[test]
    fn punycode_matches_the_rfc_and_known_names() {
        assert_eq!(to_ascii("bücher.example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(to_ascii("Bücher.Example").unwrap(), "xn--bcher-kva.example");
        assert_eq!(to_ascii("münchen.de").unwrap(), "xn--mnchen-3ya.de");
        assert_eq!(to_ascii("例え.テスト").unwrap(), "xn--r8jz45g.xn--zckzah");
        // RFC 3492 7.1 (A) Arabic (Egyptian) and (L) mixed.
        assert_eq!(
            punycode("\u{644}\u{64A}\u{647}\u{645}\u{627}\u{628}\u{62A}\u{643}\u{644}\u{645}\u{648}\u{634}\u{639}\u{631}\u{628}\u{64A}\u{61F}").unwrap(),
            "egbpdaj6bu4bxfgehfvwxn"
        );
        assert_eq!(
            punycode("3\u{5E74}B\u{7D44}\u{91D1}\u{516B}\u{5148}\u{751F}").unwrap(),
            "3B-ww4c5e180e575a65lsy2b"
        );
        assert_eq!(to_ascii("plain.example").unwrap(), "plain.example");
    }
}
