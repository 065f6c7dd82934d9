//! Splitting one fuzz input into the several files or values a target needs.

/// The byte that separates the parts of an input (never in UTF-8 text, so
/// a seed can be a readable text file with these between its parts).
pub const SEPARATOR: u8 = 0xff;

/// `data` split at [`SEPARATOR`] into exactly `n` parts (missing parts are
/// empty; separators past the `n - 1`th stay in the last part).
pub fn parts(data: &[u8], n: usize) -> Vec<&[u8]> {
    let mut out = Vec::with_capacity(n);
    let mut rest = data;
    while out.len() + 1 < n {
        match rest.iter().position(|&c| c == SEPARATOR) {
            Some(i) => {
                out.push(&rest[..i]);
                rest = &rest[i + 1..];
            }
            None => {
                out.push(rest);
                rest = &[];
            }
        }
    }
    out.push(rest);
    out
}

/// Reads small numbers off the front of an input; zeros once it runs out.
pub struct Bytes<'a>(pub &'a [u8]);

impl<'a> Bytes<'a> {
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }
    pub fn u32(&mut self) -> u32 {
        u32::from_le_bytes([self.u8(), self.u8(), self.u8(), self.u8()])
    }
    /// What is left.
    pub fn rest(self) -> &'a [u8] {
        self.0
    }
}
