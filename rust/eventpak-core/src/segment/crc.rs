//! CRC-32C of one frame. Every read checks it, so it is on the hottest path there is.
//! Frames are short (typically 100-300 bytes); for those a plain loop over the SSE 4.2
//! `crc32` instruction, 8 bytes at a time, does a third of the work of the general
//! routine, whose alignment split and three-way interleaving pay off only on kilobytes.
//! Anything else (long frames, other processors) goes to the `crc32c` crate; both give
//! the same value, which a test checks at every length the loop takes and past it.

/// Frames up to this length take the short loop.
const SHORT_MAX: usize = 1024;

/// The CRC-32C (Castagnoli) of `bytes`.
#[inline]
pub(crate) fn crc32c(bytes: &[u8]) -> u32 {
    #[cfg(target_arch = "x86_64")]
    if bytes.len() <= SHORT_MAX && std::is_x86_feature_detected!("sse4.2") {
        // SAFETY: the processor has SSE 4.2, checked just above.
        return unsafe { short_sse42(bytes) };
    }
    ::crc32c::crc32c(bytes)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "sse4.2")]
unsafe fn short_sse42(bytes: &[u8]) -> u32 {
    use std::arch::x86_64::{_mm_crc32_u64, _mm_crc32_u8};
    let mut words = bytes.chunks_exact(8);
    let mut crc = u64::from(u32::MAX);
    for word in &mut words {
        crc = _mm_crc32_u64(crc, u64::from_le_bytes(word.try_into().expect("8 bytes")));
    }
    let mut crc = crc as u32;
    for &byte in words.remainder() {
        crc = _mm_crc32_u8(crc, byte);
    }
    !crc
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_general_routine_at_every_length_and_alignment() {
        let data: Vec<u8> = (0..4096u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        for start in 0..8 {
            for len in 0..=(SHORT_MAX + 64).min(data.len() - start) {
                let part = &data[start..start + len];
                assert_eq!(crc32c(part), ::crc32c::crc32c(part), "start {start}, length {len}");
            }
        }
    }

    #[test]
    fn known_value() {
        // The check value of CRC-32C (RFC 3720, appendix B.4).
        assert_eq!(crc32c(b"123456789"), 0xE306_9283);
    }
}
