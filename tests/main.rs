//! The integration tests, one binary: every module drives the real engine (or the real
//! command line, or the app through egui_kittest) on fixtures `support` writes, and checks
//! pixels against an independent decoder.

mod support;

mod built_levels;
mod cli;
mod codecs;
mod convert;
mod export;
mod formats;
mod gui;
mod levels;
mod malformed;
mod mutation;
mod orientation;
mod physical;
mod remote;
mod scientific;
mod stream_index;
