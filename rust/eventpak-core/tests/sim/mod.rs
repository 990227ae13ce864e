//! Storage backends for reliability tests: one that fails chosen operations, one that
//! records what was durable when so crash states can be rebuilt afterwards. Plus the
//! shared workload and the check of what any recovered state may contain.
#![allow(dead_code)]

pub mod faults;
pub mod record;

pub mod workload;
