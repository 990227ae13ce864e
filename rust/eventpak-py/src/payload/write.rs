//! The msgpack forms the encoder writes. Each value takes the smallest form that holds it,
//! as msgpack-python writes them (`use_bin_type=True`), so one value always encodes to the
//! same bytes and other msgpack implementations read them without surprise.

use super::copy::put;

/// The longest str, bin, array or map msgpack can describe: its length fields are 32-bit.
pub const MAX_LEN: usize = u32::MAX as usize;

/// nil.
#[inline]
pub fn nil(out: &mut Vec<u8>) {
    out.push(0xc0);
}

/// false or true.
#[inline]
pub fn boolean(out: &mut Vec<u8>, value: bool) {
    out.push(if value { 0xc3 } else { 0xc2 });
}

/// A signed integer: positive values as unsigned forms, negative ones as the smallest of
/// negative fixint, int8, int16, int32 and int64.
#[inline(always)]
pub fn int(out: &mut Vec<u8>, value: i64) {
    // -32 to 127, the most common ints, are one byte: positive and negative fixint.
    if (-32..0x80).contains(&value) {
        out.push(value as u8);
    } else {
        wide_int(out, value);
    }
}

/// [`int`] beyond the fixints.
#[inline(never)]
fn wide_int(out: &mut Vec<u8>, value: i64) {
    if value >= 0 {
        uint(out, value as u64);
    } else if value >= -32 {
        out.push(value as u8); // negative fixint: the byte is the two's complement value
    } else if value >= i64::from(i8::MIN) {
        out.extend_from_slice(&[0xd0, value as u8]);
    } else if value >= i64::from(i16::MIN) {
        let [a, b] = (value as i16).to_be_bytes();
        out.extend_from_slice(&[0xd1, a, b]);
    } else if value >= i64::from(i32::MIN) {
        let [a, b, c, d] = (value as i32).to_be_bytes();
        out.extend_from_slice(&[0xd2, a, b, c, d]);
    } else {
        out.push(0xd3);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// An unsigned integer: the smallest of positive fixint, uint8, uint16, uint32 and uint64.
#[inline]
pub fn uint(out: &mut Vec<u8>, value: u64) {
    if value < 0x80 {
        out.push(value as u8);
    } else if value <= 0xff {
        out.extend_from_slice(&[0xcc, value as u8]);
    } else if value <= 0xffff {
        let [a, b] = (value as u16).to_be_bytes();
        out.extend_from_slice(&[0xcd, a, b]);
    } else if value <= 0xffff_ffff {
        let [a, b, c, d] = (value as u32).to_be_bytes();
        out.extend_from_slice(&[0xce, a, b, c, d]);
    } else {
        out.push(0xcf);
        out.extend_from_slice(&value.to_be_bytes());
    }
}

/// float64 (never float32: that would lose precision).
#[inline]
pub fn float(out: &mut Vec<u8>, value: f64) {
    out.push(0xcb);
    out.extend_from_slice(&value.to_be_bytes());
}

/// A str: fixstr, str8, str16 or str32 header, then the UTF-8 bytes. The caller has checked
/// `text.len() <= MAX_LEN`.
#[inline(always)]
pub fn str(out: &mut Vec<u8>, text: &[u8]) {
    let len = text.len();
    if len < 32 {
        put(out, &[0xa0 | len as u8], text);
    } else if len <= 0xff {
        put(out, &[0xd9, len as u8], text);
    } else {
        long(out, text, STR);
    }
}

/// A bin: bin8, bin16 or bin32 header (there is no fixed form), then the bytes. The caller
/// has checked `data.len() <= MAX_LEN`.
#[inline]
pub fn bin(out: &mut Vec<u8>, data: &[u8]) {
    if data.len() <= 0xff {
        put(out, &[0xc4, data.len() as u8], data);
    } else {
        long(out, data, BIN);
    }
}

/// The header of a str of `len` bytes, whose text the caller writes apart.
pub fn str_header(out: &mut Vec<u8>, len: usize) {
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else {
        sized(out, len, STR);
    }
}

/// The header of a bin of `len` bytes, whose data the caller writes apart.
pub fn bin_header(out: &mut Vec<u8>, len: usize) {
    sized(out, len, BIN);
}

/// The markers of the 8-, 16- and 32-bit length forms of str and of bin.
const STR: [u8; 3] = [0xd9, 0xda, 0xdb];
const BIN: [u8; 3] = [0xc4, 0xc5, 0xc6];

/// A str or bin longer than 255 bytes, kept out of line.
#[inline(never)]
fn long(out: &mut Vec<u8>, data: &[u8], markers: [u8; 3]) {
    out.reserve(5 + data.len());
    sized(out, data.len(), markers);
    out.extend_from_slice(data);
}

/// A length-prefixed marker: `markers` are those of the 8-, 16- and 32-bit length forms.
fn sized(out: &mut Vec<u8>, len: usize, markers: [u8; 3]) {
    if let Ok(len) = u8::try_from(len) {
        out.extend_from_slice(&[markers[0], len]);
    } else if let Ok(len) = u16::try_from(len) {
        let [a, b] = len.to_be_bytes();
        out.extend_from_slice(&[markers[1], a, b]);
    } else {
        let [a, b, c, d] = (len as u32).to_be_bytes();
        out.extend_from_slice(&[markers[2], a, b, c, d]);
    }
}

/// The header of an array of `len` items: fixarray, array16 or array32.
#[inline]
pub fn array_header(out: &mut Vec<u8>, len: usize) {
    collection_header(out, len, [0x90, 0xdc, 0xdd]);
}

/// The header of a map of `len` pairs: fixmap, map16 or map32.
#[inline]
pub fn map_header(out: &mut Vec<u8>, len: usize) {
    collection_header(out, len, [0x80, 0xde, 0xdf]);
}

/// An array or map header: `markers` are its fixed form's base and its 16- and 32-bit forms.
#[inline(always)]
fn collection_header(out: &mut Vec<u8>, len: usize, markers: [u8; 3]) {
    if len < 16 {
        out.push(markers[0] | len as u8);
    } else if let Ok(len) = u16::try_from(len) {
        let [a, b] = len.to_be_bytes();
        out.extend_from_slice(&[markers[1], a, b]);
    } else {
        let [a, b, c, d] = (len as u32).to_be_bytes();
        out.extend_from_slice(&[markers[2], a, b, c, d]);
    }
}

/// An extension value of type `kind`: fixext 1, 2, 4, 8 or 16 when `data` has one of those
/// lengths, else ext8 (the encoder writes nothing longer than 255 bytes).
pub fn ext(out: &mut Vec<u8>, kind: i8, data: &[u8]) {
    match data.len() {
        1 => out.push(0xd4),
        2 => out.push(0xd5),
        4 => out.push(0xd6),
        8 => out.push(0xd7),
        16 => out.push(0xd8),
        len => out.extend_from_slice(&[0xc7, u8::try_from(len).expect("ext data fits ext8")]),
    }
    out.push(kind as u8);
    out.extend_from_slice(data);
}
