//! The engine's splitmix64 with the helpers the tests want, so a printed seed replays a run
//! (a corruption sweep, a crash state) exactly. Include it with `mod rng;` from a test
//! file, or with a `#[path]` from a module below `tests/`.
#![allow(dead_code)]

use eventpak_core::rng::SplitMix64;

/// The generator; the field is its state, so `Rng(seed)` starts a sequence.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        let mut generator = SplitMix64(self.0);
        let value = generator.next_u64();
        self.0 = generator.0;
        value
    }

    /// A value in `0..n`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }

    /// An index into something of length `n`.
    pub fn index(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }

    pub fn coin(&mut self) -> bool {
        self.next() & 1 == 1
    }
}
