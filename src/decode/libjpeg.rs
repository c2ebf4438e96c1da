//! The one place Tessera starts libjpeg (mozjpeg): a decompressor with the strict error
//! manager (`sys::libjpeg`), set to the page's colour space and an optional DCT scale, and
//! the guard that turns libjpeg's unwound errors into `FormatError`s.

use std::panic::{AssertUnwindSafe, catch_unwind};

use crate::error::FormatError;
use crate::format::{Mode, Page};

/// A started libjpeg decompressor reading from `R`.
pub type Started<R> = mozjpeg::decompress::DecompressStarted<R>;

/// Start decoding a JPEG from `reader` as `page`'s mode (gray, CMYK, or RGB), at `1/denom`
/// of its size through libjpeg's DCT scaling (`denom` 1, 2, 4 or 8).
pub fn start<R: std::io::BufRead>(
    reader: R,
    page: &Page,
    denom: u8,
) -> Result<Started<R>, FormatError> {
    let mut d = mozjpeg::Decompress::with_err(crate::sys::libjpeg::strict())
        .from_reader(reader)
        .map_err(|e| FormatError::invalid(format!("JPEG: {e}")))?;
    if denom > 1 {
        d.scale(8 / denom.clamp(1, 8));
    }
    let started = match page.mode {
        Mode::L => d.grayscale(),
        Mode::Cmyk => d.to_colorspace(mozjpeg::ColorSpace::JCS_CMYK),
        _ => d.rgb(),
    };
    started.map_err(|e| FormatError::invalid(format!("JPEG: {e}")))
}

/// Run `work`, which drives libjpeg: an error or warning libjpeg raises (unwound by the
/// strict error manager) comes back as a `FormatError` with libjpeg's message.
pub fn guarded<T>(work: impl FnOnce() -> Result<T, FormatError>) -> Result<T, FormatError> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(r) => r,
        Err(payload) => {
            let msg = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "decoder failed".to_string());
            Err(FormatError::invalid(format!("JPEG: {msg}")))
        }
    }
}
