//! shikaku binary
fn main() {}
