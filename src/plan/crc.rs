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
    #[cfg(all(feature = "host", target_arch = "x86_64"))]
    {
        if std::is_x86_feature_detected!("sse4.2") {
            // SAFETY: the CPU supports SSE4.2 (checked just above).
            #[allow(unsafe_code)]
            return unsafe { hw::crc32c_update(state, data) };
        }
    }
    table_update(state, data)
}

/// The portable table-driven CRC (what the runtime always uses).
fn table_update(state: u32, data: &[u8]) -> u32 {
    let mut c = !state;
    for &b in data {
        c = TABLE[((c ^ b as u32) & 0xff) as usize] ^ (c >> 8);
    }
    !c
}

/// The host's fast path: the SSE4.2 `crc32` instruction computes exactly
/// this CRC (same polynomial, reflected, same pre- and post-inversion), eight
/// bytes per instruction instead of one table lookup per byte.
#[cfg(all(feature = "host", target_arch = "x86_64"))]
mod hw {
    use core::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};

    #[target_feature(enable = "sse4.2")]
    pub(super) fn crc32c_update(state: u32, data: &[u8]) -> u32 {
        let mut c = !state as u64;
        let mut words = data.chunks_exact(8);
        for w in &mut words {
            let mut b = [0u8; 8];
            b.copy_from_slice(w);
            c = _mm_crc32_u64(c, u64::from_le_bytes(b));
        }
        let mut c = c as u32;
        for &b in words.remainder() {
            c = _mm_crc32_u8(c, b);
        }
        !c
    }
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

    #[test]
    fn fast_path_equals_table() {
        // Every length 0..300 and odd split points: the host fast path (when
        // compiled in and supported) must agree with the table bit for bit.
        let data: std::vec::Vec<u8> = (0..300u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for len in 0..data.len() {
            let d = &data[..len];
            assert_eq!(super::crc32c(d), super::table_update(0, d), "len {len}");
            let cut = len / 3;
            let a = super::crc32c_update(0x1234_5678, &d[..cut]);
            let t = super::table_update(0x1234_5678, &d[..cut]);
            assert_eq!(a, t);
            assert_eq!(super::crc32c_update(a, &d[cut..]), super::table_update(t, &d[cut..]));
        }
    }
}
