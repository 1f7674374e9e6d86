//! Prints a line; with the argument `panic`, panics (to show what a panic
//! prints with the std features the cross build uses).
fn main() {
    if std::env::args().nth(1).as_deref() == Some("panic") {
        panic!("size-baseline: panic on request");
    }
    println!("size-baseline");
}
