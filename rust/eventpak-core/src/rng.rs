//! splitmix64: a tiny, fast, seedable generator. Not for secrets: it spreads the random bits
//! of event ids (seeded once from the OS) and drives the engine's reproducible test sweeps.

/// The generator; the field is its state, so `SplitMix64(seed)` starts a sequence.
#[derive(Clone, Debug)]
pub struct SplitMix64(pub u64);

impl SplitMix64 {
    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}
