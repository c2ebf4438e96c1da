//! libjpeg's error manager (through mozjpeg's C API): fatal errors and warnings both unwind
//! with libjpeg's message. Warnings matter: on corrupt or truncated data libjpeg warns and
//! paints the rest grey, which must be an error, not a picture. `decode::libjpeg` catches the
//! unwind and turns it into a `FormatError`.

use std::os::raw::c_int;

use mozjpeg_sys::{jpeg_common_struct, jpeg_error_mgr, jpeg_std_error};

/// libjpeg-turbo's `JMSG_LENGTH_MAX`: the longest message `format_message` writes.
const MESSAGE_MAX: usize = 200;

fn message(cinfo: &mut jpeg_common_struct) -> String {
    let mut buf = [0u8; MESSAGE_MAX + 56];
    // SAFETY: `cinfo.err` is the manager `strict` built, installed by mozjpeg before any call
    // that can fail, and alive as long as `cinfo`. Its `format_message` (libjpeg's own) writes
    // at most JMSG_LENGTH_MAX bytes, NUL included, into the buffer it is given. mozjpeg-sys
    // declares that argument as `&[u8; 80]`, a shared reference C would write through, so the
    // function pointer is re-typed to take a raw `*mut u8` (the same C ABI: one pointer) and
    // given our larger, writable buffer.
    unsafe {
        if !cinfo.err.is_null()
            && let Some(format) = (*cinfo.err).format_message
        {
            type Format = unsafe extern "C-unwind" fn(&mut jpeg_common_struct, *mut u8);
            let format: Format = std::mem::transmute(format);
            format(cinfo, buf.as_mut_ptr());
        }
    }
    let end = buf.iter().position(|&b| b == 0).unwrap_or(buf.len());
    String::from_utf8_lossy(&buf[..end]).into_owned()
}

extern "C-unwind" fn fatal(cinfo: &mut jpeg_common_struct) {
    let msg = message(cinfo);
    std::panic::resume_unwind(Box::new(msg));
}

extern "C-unwind" fn emit(cinfo: &mut jpeg_common_struct, level: c_int) {
    if level < 0 {
        let msg = message(cinfo);
        std::panic::resume_unwind(Box::new(msg));
    }
}

/// An error manager that unwinds on errors and on warnings. libjpeg is built with
/// `-fexceptions` (mozjpeg-sys's `unwinding` feature), so unwinding through its frames is
/// defined.
pub fn strict() -> jpeg_error_mgr {
    // SAFETY: an all-zero `jpeg_error_mgr` is a valid value (null function pointers and
    // counters), and `jpeg_std_error` then fills in every field of the struct it is given.
    let mut err: jpeg_error_mgr = unsafe { std::mem::zeroed() };
    // SAFETY: `err` is a live, exclusively borrowed manager for the duration of the call.
    unsafe {
        jpeg_std_error(&mut err);
    }
    err.error_exit = Some(fatal);
    err.emit_message = Some(emit);
    err
}
