//! The two checksums Ra's storage uses: Adler-32 over WAL records, CRC-32 (IEEE) over segment data.
//!
//! Why Adler-32 is written here: it is a dozen lines, and the on-disk formats must match Ra's choice (a
//! weak Adler-32 on the WAL is part of what the torn-tail rule relies on). CRC-32 comes from
//! `crc32fast`: segment reads of large values spent most of a run in a byte-at-a-time table.

/// Adler-32 (RFC 1950) of the concatenation of `parts`.
pub fn adler32(parts: &[&[u8]]) -> u32 {
    const MOD: u32 = 65_521;
    // 5552 is the largest n with 255·n·(n+1)/2 + (n+1)·(MOD−1) < 2^32: sums cannot overflow in a block.
    const BLOCK: usize = 5552;
    let (mut a, mut b) = (1u32, 0u32);
    for part in parts {
        for block in part.chunks(BLOCK) {
            for &byte in block {
                a += u32::from(byte);
                b += a;
            }
            a %= MOD;
            b %= MOD;
        }
    }
    (b << 16) | a
}

/// CRC-32 (IEEE 802.3, the one zlib and Erlang's `erlang:crc32/1` compute).
pub fn crc32(data: &[u8]) -> u32 {
    crc32fast::hash(data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answers() {
        assert_eq!(adler32(&[b"Wikipedia"]), 0x11E6_0398);
        assert_eq!(adler32(&[b"Wiki", b"pedia"]), 0x11E6_0398);
        assert_eq!(adler32(&[]), 1);
        assert_eq!(crc32(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc32(b""), 0);
    }

    #[test]
    fn adler_blocks_do_not_overflow() {
        let data = vec![0xFFu8; 100_000];
        // Reference: the naive modular form.
        let (mut a, mut b) = (1u64, 0u64);
        for &x in &data {
            a = (a + u64::from(x)) % 65_521;
            b = (b + a) % 65_521;
        }
        assert_eq!(adler32(&[&data]), ((b << 16) | a) as u32);
    }
}
