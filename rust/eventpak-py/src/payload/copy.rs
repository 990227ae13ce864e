//! Appending to the output buffer: a header and a body with one capacity check, and short
//! bodies (most keys and many values) copied in place rather than through `memcpy`.

/// Appends `head`, then `body`, with one capacity check for both.
#[inline(always)]
pub fn put(out: &mut Vec<u8>, head: &[u8], body: &[u8]) {
    let start = out.len();
    out.reserve(head.len() + body.len());
    // SAFETY: `reserve` made room for both slices after `start`; neither slice can overlap
    // the vector's spare capacity, which only `out` (borrowed mutably here) reaches.
    unsafe {
        let end = out.as_mut_ptr().add(start);
        std::ptr::copy_nonoverlapping(head.as_ptr(), end, head.len());
        copy(body, end.add(head.len()));
        out.set_len(start + head.len() + body.len());
    }
}

/// Copies `src` to `dst`. Up to 32 bytes (most keys and many values) with two loads and two
/// stores that may overlap in the middle; past that through `memcpy`, whose call and size
/// dispatch cost more than copying a few bytes.
///
/// # Safety
/// `dst` is valid for writes of `src.len()` bytes and does not overlap `src`.
#[inline(always)]
unsafe fn copy(src: &[u8], dst: *mut u8) {
    let (len, from) = (src.len(), src.as_ptr());
    // SAFETY: every read is within `src` and every write within `dst[..len]`: each branch
    // reads and writes a first and a last block of a width no larger than `len`.
    unsafe {
        if len > 32 {
            std::ptr::copy_nonoverlapping(from, dst, len);
        } else if len >= 16 {
            let (a, b) =
                (from.cast::<u128>().read_unaligned(), from.add(len - 16).cast::<u128>().read_unaligned());
            dst.cast::<u128>().write_unaligned(a);
            dst.add(len - 16).cast::<u128>().write_unaligned(b);
        } else if len >= 8 {
            let (a, b) =
                (from.cast::<u64>().read_unaligned(), from.add(len - 8).cast::<u64>().read_unaligned());
            dst.cast::<u64>().write_unaligned(a);
            dst.add(len - 8).cast::<u64>().write_unaligned(b);
        } else if len >= 4 {
            let (a, b) =
                (from.cast::<u32>().read_unaligned(), from.add(len - 4).cast::<u32>().read_unaligned());
            dst.cast::<u32>().write_unaligned(a);
            dst.add(len - 4).cast::<u32>().write_unaligned(b);
        } else if len > 0 {
            // 1 to 3 bytes: the first, the middle and the last (some of them the same byte).
            let (a, b, c) = (*from, *from.add(len / 2), *from.add(len - 1));
            *dst = a;
            *dst.add(len / 2) = b;
            *dst.add(len - 1) = c;
        }
    }
}
