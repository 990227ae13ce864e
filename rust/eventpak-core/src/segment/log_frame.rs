//! Either kind of frame the log holds: an event, or a tracking record.

use super::frame::{decode_frame, Decoded, FrameView};
use super::tracking_frame::TrackingView;

/// A decoded frame of the log: an event, or a tracking record.
#[derive(Clone, Copy, Debug)]
pub enum LogFrame<'a> {
    /// An event frame.
    Event(FrameView<'a>),
    /// A tracking record.
    Tracking(TrackingView<'a>),
}

impl<'a> LogFrame<'a> {
    /// The frame at the start of `buf`, or why there is none: `Err(None)` when the bytes
    /// end before it does, `Err(Some(reason))` when it is damaged.
    #[inline]
    pub fn decode(buf: &'a [u8]) -> Result<Self, Option<String>> {
        match decode_frame(buf) {
            Decoded::Frame(frame) => Ok(LogFrame::Event(frame)),
            Decoded::Tracking(tracking) => Ok(LogFrame::Tracking(tracking)),
            Decoded::Short => Err(None),
            Decoded::Bad(why) => Err(Some(why)),
        }
    }

    /// The global sequence in its header (a tracking record's is the next event's).
    pub fn global_sequence(&self) -> u64 {
        match self {
            LogFrame::Event(f) => f.global_sequence,
            LogFrame::Tracking(t) => t.global_sequence,
        }
    }

    /// Its position in its batch.
    pub fn batch_index(&self) -> u32 {
        match self {
            LogFrame::Event(f) => f.batch_index,
            LogFrame::Tracking(t) => t.batch_index,
        }
    }

    /// The number of frames of its batch.
    pub fn batch_len(&self) -> u32 {
        match self {
            LogFrame::Event(f) => f.batch_len,
            LogFrame::Tracking(t) => t.batch_len,
        }
    }

    /// Its length in bytes (the header included).
    pub fn frame_len(&self) -> usize {
        match self {
            LogFrame::Event(f) => f.len,
            LogFrame::Tracking(t) => t.len,
        }
    }

    /// True for an event frame (which takes a global sequence).
    pub fn is_event(&self) -> bool {
        matches!(self, LogFrame::Event(_))
    }
}
