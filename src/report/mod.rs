//! What a boot did, from a `parmod --trace` file and the plan it ran (host
//! only): [`decode`] is the one reader of traces (also behind `parmod-plan
//! show --trace`), [`analysis`] the critical path and bounds, and three
//! renderers: [`text`], [`svg`] and [`chrome`] (trace-event JSON).

pub mod analysis;
pub mod chrome;
pub mod decode;
pub mod svg;
pub mod text;

pub use analysis::{analyse, Analysis};
pub use decode::{decode, Decoded, Event};
