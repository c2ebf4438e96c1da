//! OpenJPEG behind one safe function: decode (an area of) a JPEG 2000 codestream at a reduce
//! factor, reading the codestream through a callback, so that the caller decides which bytes
//! the decoder sees (a main header and just the tiles a view needs).
//!
//! The callers check the codestream's sizes (SIZ) before calling; this module checks again,
//! after `opj_read_header`, that the decoded area fits `max_bytes` before `opj_decode` allocates
//! it, so the C library is never asked for an allocation sized by an unchecked header field.

use std::cell::RefCell;
use std::ffi::{CStr, c_char, c_void};

use openjpeg_sys as opj;

/// What to decode: the reduce factor (1/2^reduce of full resolution) and, optionally, an
/// area in full-resolution image coordinates `(x0, y0, x1, y1)`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Request {
    pub reduce: u32,
    pub area: Option<(u32, u32, u32, u32)>,
    /// Most bytes the decoded components may take (4 bytes a sample inside OpenJPEG).
    pub max_bytes: u64,
}

/// One decoded component, at the reduced resolution.
#[derive(Debug, Clone)]
pub struct Component {
    pub width: u32,
    pub height: u32,
    /// Position of the first sample in the component's own (reduced) grid.
    pub x0: u32,
    pub y0: u32,
    /// Subsampling against the reference grid (XRsiz, YRsiz).
    pub dx: u32,
    pub dy: u32,
    pub precision: u32,
    pub signed: bool,
    pub data: Vec<i32>,
}

/// The decoded components, and the colour space OpenJPEG found (1 sRGB, 2 grey, 3 sYCC,
/// otherwise unknown).
#[derive(Debug, Clone)]
pub struct Decoded {
    pub components: Vec<Component>,
    pub color_space: i32,
}

/// The codestream as the decoder reads it.
struct Stream<'a> {
    read: &'a mut dyn FnMut(u64, &mut [u8]) -> usize,
    pos: u64,
    len: u64,
}

unsafe extern "C" fn read_fn(buf: *mut c_void, n: usize, user: *mut c_void) -> usize {
    // SAFETY: `user` is the `Stream` that `decode` passed and keeps alive while OpenJPEG
    // runs; `buf` holds `n` writable bytes (OpenJPEG's stream buffer).
    let s = unsafe { &mut *(user as *mut Stream) };
    let want = (n as u64).min(s.len.saturating_sub(s.pos)) as usize;
    if want == 0 {
        return usize::MAX;
    }
    // SAFETY: as above, `buf` is valid for `n >= want` bytes and not aliased during the call.
    let out = unsafe { std::slice::from_raw_parts_mut(buf as *mut u8, want) };
    let got = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (s.read)(s.pos, out)))
        .unwrap_or(0)
        .min(want);
    if got == 0 {
        return usize::MAX;
    }
    s.pos += got as u64;
    got
}

unsafe extern "C" fn skip_fn(n: i64, user: *mut c_void) -> i64 {
    // SAFETY: `user` is the live `Stream` (see `read_fn`).
    let s = unsafe { &mut *(user as *mut Stream) };
    if n < 0 {
        s.pos = s.pos.saturating_sub(n.unsigned_abs());
        return n;
    }
    if s.pos >= s.len {
        return -1;
    }
    s.pos = s.pos.saturating_add(n as u64).min(s.len);
    n
}

unsafe extern "C" fn seek_fn(n: i64, user: *mut c_void) -> i32 {
    // SAFETY: `user` is the live `Stream` (see `read_fn`).
    let s = unsafe { &mut *(user as *mut Stream) };
    if n < 0 || n as u64 > s.len {
        return 0;
    }
    s.pos = n as u64;
    1
}

unsafe extern "C" fn message_fn(msg: *const c_char, user: *mut c_void) {
    if msg.is_null() || user.is_null() {
        return;
    }
    // SAFETY: `user` is the `RefCell<String>` `decode` registered and keeps alive; `msg` is a
    // NUL-terminated string OpenJPEG owns for the duration of the call.
    let (sink, text) = unsafe { (&*(user as *const RefCell<String>), CStr::from_ptr(msg)) };
    if let Ok(mut s) = sink.try_borrow_mut()
        && s.is_empty()
    {
        s.push_str(text.to_string_lossy().trim());
    }
}

/// Frees what OpenJPEG allocated, whatever way `decode` leaves.
struct Handles {
    codec: *mut opj::opj_codec_t,
    stream: *mut opj::opj_stream_t,
    image: *mut opj::opj_image_t,
}

impl Drop for Handles {
    fn drop(&mut self) {
        // SAFETY: each pointer is null or was returned by the matching OpenJPEG constructor
        // and is destroyed exactly once, here.
        unsafe {
            if !self.image.is_null() {
                opj::opj_image_destroy(self.image);
            }
            if !self.stream.is_null() {
                opj::opj_stream_destroy(self.stream);
            }
            if !self.codec.is_null() {
                opj::opj_destroy_codec(self.codec);
            }
        }
    }
}

/// Decode a raw JPEG 2000 codestream of `len` bytes, read through `read(offset, buf)` (which
/// returns the bytes it filled, 0 at an error). Errors are OpenJPEG's first error message.
pub fn decode(
    len: u64,
    read: &mut dyn FnMut(u64, &mut [u8]) -> usize,
    request: &Request,
) -> Result<Decoded, String> {
    let errors = RefCell::new(String::new());
    let mut stream_state = Stream { read, pos: 0, len };
    let fail = |what: &str, errors: &RefCell<String>| {
        let e = errors.borrow();
        if e.is_empty() {
            what.to_string()
        } else {
            format!("{what}: {e}")
        }
    };
    // SAFETY: plain OpenJPEG API use, in the documented order (create, set handlers, setup,
    // read header, set area, decode, end). Every pointer handed over (`errors`,
    // `stream_state`, `params`) outlives the codec and stream, which `Handles` destroys before
    // this function returns. Component data is read only within `w * h` samples, after
    // checking the pointer is not null.
    unsafe {
        let mut h = Handles {
            codec: opj::opj_create_decompress(opj::CODEC_FORMAT::OPJ_CODEC_J2K),
            stream: std::ptr::null_mut(),
            image: std::ptr::null_mut(),
        };
        if h.codec.is_null() {
            return Err("cannot create a JPEG 2000 decoder".into());
        }
        let sink = &errors as *const RefCell<String> as *mut c_void;
        opj::opj_set_error_handler(h.codec, Some(message_fn), sink);
        opj::opj_set_warning_handler(h.codec, None, std::ptr::null_mut());
        opj::opj_set_info_handler(h.codec, None, std::ptr::null_mut());
        let mut params: opj::opj_dparameters_t = std::mem::zeroed();
        opj::opj_set_default_decoder_parameters(&mut params);
        params.cp_reduce = request.reduce;
        if opj::opj_setup_decoder(h.codec, &mut params) == 0 {
            return Err(fail("JPEG 2000 decoder setup", &errors));
        }
        // Truncated data is an error, not a grey picture.
        opj::opj_decoder_set_strict_mode(h.codec, 1);
        h.stream = opj::opj_stream_create(1 << 16, 1);
        if h.stream.is_null() {
            return Err("cannot create a JPEG 2000 stream".into());
        }
        opj::opj_stream_set_read_function(h.stream, Some(read_fn));
        opj::opj_stream_set_skip_function(h.stream, Some(skip_fn));
        opj::opj_stream_set_seek_function(h.stream, Some(seek_fn));
        opj::opj_stream_set_user_data(
            h.stream,
            &mut stream_state as *mut Stream as *mut c_void,
            None,
        );
        opj::opj_stream_set_user_data_length(h.stream, len);
        if opj::opj_read_header(h.stream, h.codec, &mut h.image) == 0 || h.image.is_null() {
            return Err(fail("JPEG 2000 header", &errors));
        }
        let img = &*h.image;
        let (x0, y0, x1, y1) = request.area.unwrap_or((0, 0, img.x1, img.y1));
        if x0 >= x1 || y0 >= y1 || x1 > img.x1 || y1 > img.y1 {
            return Err(format!(
                "JPEG 2000 area {x0},{y0}..{x1},{y1} outside the {}x{} image",
                img.x1, img.y1
            ));
        }
        let comps = img.numcomps as u64;
        let scale = 1u64 << request.reduce.min(31);
        let out = u64::from(x1 - x0).div_ceil(scale) * u64::from(y1 - y0).div_ceil(scale);
        if comps == 0 || out.saturating_mul(comps).saturating_mul(4) > request.max_bytes {
            return Err(format!(
                "JPEG 2000 area of {out} pixels x {comps} components exceeds the decode limit"
            ));
        }
        if request.area.is_some()
            && opj::opj_set_decode_area(
                h.codec, h.image, x0 as i32, y0 as i32, x1 as i32, y1 as i32,
            ) == 0
        {
            return Err(fail("JPEG 2000 decode area", &errors));
        }
        if opj::opj_decode(h.codec, h.stream, h.image) == 0 {
            return Err(fail("JPEG 2000 data", &errors));
        }
        if opj::opj_end_decompress(h.codec, h.stream) == 0 {
            return Err(fail("JPEG 2000 end of codestream", &errors));
        }
        let img = &*h.image;
        if img.comps.is_null() {
            return Err("JPEG 2000 decoder returned no components".into());
        }
        let mut components = Vec::with_capacity(img.numcomps as usize);
        for c in std::slice::from_raw_parts(img.comps, img.numcomps as usize) {
            let n = c.w as usize * c.h as usize;
            if c.data.is_null() || n == 0 {
                return Err("JPEG 2000 component has no samples".into());
            }
            components.push(Component {
                width: c.w,
                height: c.h,
                x0: c.x0,
                y0: c.y0,
                dx: c.dx.max(1),
                dy: c.dy.max(1),
                precision: c.prec,
                signed: c.sgnd != 0,
                data: std::slice::from_raw_parts(c.data, n).to_vec(),
            });
        }
        Ok(Decoded {
            components,
            color_space: img.color_space as i32,
        })
    }
}
