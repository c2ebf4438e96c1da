//! What the window shows, as pure logic with no egui and no I/O: the viewport maths
//! ([`viewport`]) and the planning of which pieces a view wants ([`plan`]).

pub mod location;
pub mod plan;
pub mod viewport;
