//! CRC-32C (Castagnoli), table-driven, no allocation. It detects every
//! single-bit error and every burst up to 32 bits, which is what a plan
//! checksum is for: a truncated copy or a flipped bit on flash.

const POLY: u32 = 0x82f6_3b78; // reflected 0x1EDC6F41

const TABLE: [u32; 256] = {
    let mut t = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { (c >> 1) ^ POLY } else { c >> 1 };
            k += 1;
        }
        t[i] = c;
        i += 1;
    }
    t
};

/// Continue a CRC-32C over `data` (start with `state = 0`).
pub fn crc32c_update(state: u32, data: &[u8]) -> u32 {
    let mut c = !state;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// CRC-32C of `data`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc32c_update(0, data)
}

#[cfg(test)]
mod tests {
    #[test]
    fn known_vectors() {
        // RFC 3720 B.4 test vectors.
        assert_eq!(super::crc32c(&[0u8; 32]), 0x8a91_36aa);
        assert_eq!(super::crc32c(&[0xffu8; 32]), 0x62a8_ab43);
        assert_eq!(super::crc32c(b"123456789"), 0xe306_9283);
        let a = super::crc32c_update(0, b"1234");
        assert_eq!(super::crc32c_update(a, b"56789"), 0xe306_9283);
    }
}
