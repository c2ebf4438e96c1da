//! Fixture encoders the tests share: PNM, BMP, TIFF (through `synth`), PNG (by hand, so
//! interlaced and every depth), JPEG (mozjpeg, restart intervals through libjpeg's C API), and
//! zlib. Each writes from a deterministic pattern the tests compare against.

use std::io::Cursor;

use super::synth::{TiffSpec, pattern, write_tiff};

/// `bytes` compressed as a zlib stream (TIFF deflate chunks, PNG IDAT).
pub fn zlib(bytes: &[u8], level: flate2::Compression) -> Vec<u8> {
    use std::io::Write;
    let mut e = flate2::write::ZlibEncoder::new(Vec::new(), level);
    e.write_all(bytes).expect("deflate");
    e.finish().expect("deflate")
}

pub fn px(x: u32, y: u32, c: u32) -> u8 {
    pattern(x, y, c)
}

pub fn pnm_binary(magic: u8, w: u32, h: u32, maxval: u32, spp: u32) -> Vec<u8> {
    let mut f = format!("P{}\n# a comment\n{w} # width\n{h}\n", magic as char).into_bytes();
    if magic != b'4' {
        f.extend_from_slice(format!("{maxval}\n").as_bytes());
    }
    for y in 0..h {
        if magic == b'4' {
            let mut row = vec![0u8; w.div_ceil(8) as usize];
            for x in 0..w {
                if px(x, y, 0) & 1 == 1 {
                    row[(x / 8) as usize] |= 0x80 >> (x % 8);
                }
            }
            f.extend_from_slice(&row);
            continue;
        }
        for x in 0..w {
            for c in 0..spp {
                let v = u32::from(px(x, y, c)) * maxval / 255;
                if maxval > 255 {
                    f.extend_from_slice(&(v as u16).to_be_bytes());
                } else {
                    f.push(v as u8);
                }
            }
        }
    }
    f
}

pub fn pnm_plain(magic: u8, w: u32, h: u32, maxval: u32, spp: u32) -> Vec<u8> {
    let mut s = format!("P{}\n# plain\n{w} {h}\n", magic as char);
    if magic != b'1' {
        s.push_str(&format!("{maxval}\n"));
    }
    for y in 0..h {
        for x in 0..w {
            for c in 0..spp {
                let v = if magic == b'1' {
                    u32::from(px(x, y, 0) & 1)
                } else {
                    u32::from(px(x, y, c)) * maxval / 255
                };
                s.push_str(&format!("{v} "));
            }
        }
        s.push('\n');
    }
    s.into_bytes()
}

pub struct Bmp {
    pub bpp: u16,
    pub compression: u32,
    pub top_down: bool,
    pub masks: Option<[u32; 4]>,
    pub v5: bool,
    pub palette: Vec<[u8; 3]>,
}

pub fn bmp_file(spec: &Bmp, w: u32, h: u32, pixels: &[Vec<u8>]) -> Vec<u8> {
    // pixels: stored rows in file order (already packed/encoded).
    let dib = if spec.v5 { 124 } else { 40 };
    let extra_masks = if spec.masks.is_some() && !spec.v5 {
        12
    } else {
        0
    };
    let pal_bytes = spec.palette.len() * 4;
    let data: Vec<u8> = pixels.concat();
    let off = 14 + dib + extra_masks + pal_bytes;
    let mut f = Vec::new();
    f.extend_from_slice(b"BM");
    f.extend_from_slice(&((off + data.len()) as u32).to_le_bytes());
    f.extend_from_slice(&[0; 4]);
    f.extend_from_slice(&(off as u32).to_le_bytes());
    let mut d = vec![0u8; dib];
    d[0..4].copy_from_slice(&(dib as u32).to_le_bytes());
    d[4..8].copy_from_slice(&(w as i32).to_le_bytes());
    let hh = if spec.top_down { -(h as i32) } else { h as i32 };
    d[8..12].copy_from_slice(&hh.to_le_bytes());
    d[12..14].copy_from_slice(&1u16.to_le_bytes());
    d[14..16].copy_from_slice(&spec.bpp.to_le_bytes());
    d[16..20].copy_from_slice(&spec.compression.to_le_bytes());
    d[20..24].copy_from_slice(&(data.len() as u32).to_le_bytes());
    d[32..36].copy_from_slice(&(spec.palette.len() as u32).to_le_bytes());
    if let (Some(m), true) = (spec.masks, spec.v5) {
        for (i, v) in m.iter().enumerate() {
            d[40 + i * 4..44 + i * 4].copy_from_slice(&v.to_le_bytes());
        }
        d[56..60].copy_from_slice(b"BGRs");
    }
    f.extend_from_slice(&d);
    if let (Some(m), false) = (spec.masks, spec.v5) {
        for v in &m[..3] {
            f.extend_from_slice(&v.to_le_bytes());
        }
    }
    for c in &spec.palette {
        f.extend_from_slice(&[c[2], c[1], c[0], 0]);
    }
    f.extend_from_slice(&data);
    f
}

pub fn palette(n: usize) -> Vec<[u8; 3]> {
    (0..n)
        .map(|i| {
            [
                (i * 37) as u8,
                (i * 91 + 7) as u8,
                (255usize.wrapping_sub(i * 13)) as u8,
            ]
        })
        .collect()
}

pub fn file_rows(h: u32, top_down: bool) -> Vec<u32> {
    if top_down {
        (0..h).collect()
    } else {
        (0..h).rev().collect()
    }
}

pub fn pad4(mut row: Vec<u8>) -> Vec<u8> {
    while !row.len().is_multiple_of(4) {
        row.push(0);
    }
    row
}

pub fn tiff_bytes(
    spec: &TiffSpec,
    sample: &dyn Fn(u32, u32, u32) -> u16,
    comp: Option<u16>,
) -> Vec<u8> {
    let deflate = |b: &[u8]| zlib(b, flate2::Compression::default());
    let lzw = |b: &[u8]| {
        weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .encode(b)
            .expect("lzw")
    };
    let packbits = |b: &[u8]| {
        // Literal runs of up to 128 bytes, and repeats where they pay.
        let mut out = Vec::new();
        let mut i = 0;
        while i < b.len() {
            let mut run = 1;
            while i + run < b.len() && run < 128 && b[i + run] == b[i] {
                run += 1;
            }
            if run >= 3 {
                out.push((257 - run) as u8);
                out.push(b[i]);
                i += run;
            } else {
                let n = (b.len() - i).min(128);
                out.push((n - 1) as u8);
                out.extend_from_slice(&b[i..i + n]);
                i += n;
            }
        }
        out
    };
    let mut cur = Cursor::new(Vec::new());
    let compressor: Option<crate::support::synth::Compressor<'_>> = match comp {
        Some(8) => Some((8, &deflate)),
        Some(5) => Some((5, &lzw)),
        Some(32773) => Some((32773, &packbits)),
        _ => None,
    };
    write_tiff(&mut cur, spec, sample, compressor).expect("tiff");
    cur.into_inner()
}

/// A PNG written by hand (the `png` crate's encoder cannot interlace): filter type 0 rows,
/// Adam7 passes when `interlaced`, zlib from flate2.
pub fn png_bytes(
    color: png::ColorType,
    depth: png::BitDepth,
    interlaced: bool,
    trns: bool,
    w: u32,
    h: u32,
) -> Vec<u8> {
    let bits = depth as u32;
    let (code, spp) = match color {
        png::ColorType::Grayscale => (0u8, 1u32),
        png::ColorType::Rgb => (2, 3),
        png::ColorType::Indexed => (3, 1),
        png::ColorType::GrayscaleAlpha => (4, 2),
        png::ColorType::Rgba => (6, 4),
    };
    let sample = |x: u32, y: u32, c: u32| -> u16 {
        let v = (u16::from(px(x, y, c)) * 257).saturating_add((x % 5) as u16);
        if bits == 16 {
            v
        } else {
            (v >> 8) >> (8 - bits)
        }
    };
    let row = |y: u32, xs: &[u32]| -> Vec<u8> {
        let mut r = vec![0u8; 1 + (xs.len() as u32 * spp * bits).div_ceil(8) as usize];
        let mut bit = 8usize;
        for &x in xs {
            for c in 0..spp {
                let v = sample(x, y, c);
                match bits {
                    16 => r[bit / 8..bit / 8 + 2].copy_from_slice(&v.to_be_bytes()),
                    8 => r[bit / 8] = v as u8,
                    n => r[bit / 8] |= (v as u8) << (8 - n as usize - bit % 8),
                }
                bit += bits as usize;
            }
        }
        r
    };
    let mut raw = Vec::new();
    if interlaced {
        for (x0, y0, dx, dy) in [
            (0, 0, 8, 8),
            (4, 0, 8, 8),
            (0, 4, 4, 8),
            (2, 0, 4, 4),
            (0, 2, 2, 4),
            (1, 0, 2, 2),
            (0, 1, 1, 2),
        ] {
            let xs: Vec<u32> = (x0..w).step_by(dx).collect();
            if xs.is_empty() {
                continue;
            }
            for y in (y0..h).step_by(dy) {
                raw.extend(row(y, &xs));
            }
        }
    } else {
        let xs: Vec<u32> = (0..w).collect();
        for y in 0..h {
            raw.extend(row(y, &xs));
        }
    }
    let idat = zlib(&raw, flate2::Compression::fast());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut chunk = |kind: &[u8], data: &[u8]| {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(kind);
        crc.update(data);
        out.extend_from_slice(kind);
        out.extend_from_slice(data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    };
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[bits as u8, code, 0, 0, interlaced as u8]);
    chunk(b"IHDR", &ihdr);
    if code == 3 {
        let n = 1usize << bits;
        let plte: Vec<u8> = (0..n)
            .flat_map(|i| [(i * 37) as u8, (i * 91) as u8, (i * 13 + 5) as u8])
            .collect();
        chunk(b"PLTE", &plte);
        if trns {
            chunk(
                b"tRNS",
                &(0..n).map(|i| (i * 53) as u8).collect::<Vec<u8>>(),
            );
        }
    } else if trns && code == 0 {
        chunk(b"tRNS", &sample(1, 1, 0).to_be_bytes());
    } else if trns && code == 2 {
        let k: Vec<u8> = (0..3).flat_map(|c| sample(2, 2, c).to_be_bytes()).collect();
        chunk(b"tRNS", &k);
    }
    // Split the data over two IDAT chunks, as real encoders do.
    let mid = idat.len() / 2;
    chunk(b"IDAT", &idat[..mid]);
    chunk(b"IDAT", &idat[mid..]);
    chunk(b"IEND", &[]);
    out
}

pub fn jpeg_bytes(components: u8, progressive: bool, subsample: bool, w: u32, h: u32) -> Vec<u8> {
    let space = match components {
        1 => mozjpeg::ColorSpace::JCS_GRAYSCALE,
        4 => mozjpeg::ColorSpace::JCS_CMYK,
        _ => mozjpeg::ColorSpace::JCS_RGB,
    };
    let mut c = mozjpeg::Compress::new(space);
    c.set_size(w as usize, h as usize);
    c.set_quality(95.0);
    if progressive {
        c.set_progressive_mode();
    } else {
        c.set_optimize_scans(false);
        c.set_scan_optimization_mode(mozjpeg::ScanMode::AllComponentsTogether);
    }
    if components == 3 && !subsample {
        for comp in c.components_mut() {
            comp.h_samp_factor = 1;
            comp.v_samp_factor = 1;
        }
    }
    let mut started = c.start_compress(Vec::new()).expect("start");
    let data: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w)
                .flat_map(move |x| (0..components).map(move |ch| px(x, y, u32::from(ch)) / 2 + 60))
        })
        .collect();
    started.write_scanlines(&data).expect("write");
    started.finish().expect("finish")
}

/// Noise with some structure, so deflate and the PNG filters have real work.
pub fn noise(x: u32, y: u32, c: u32) -> u16 {
    let mut h = x.wrapping_mul(0x9E37_79B1) ^ y.wrapping_mul(0x85EB_CA77) ^ c.wrapping_mul(0xC2B2);
    h ^= h >> 15;
    h = h.wrapping_mul(0x2C1B_3C6D);
    h ^= h >> 12;
    let smooth = (x * 3 + y * 2 + c * 50) as u16;
    smooth.wrapping_mul(97).wrapping_add((h & 0x0FFF) as u16)
}

/// A PNG from the `png` crate's encoder (adaptive filters), its IDAT re-cut into chunks of
/// `chunk` bytes as big encoders do.
pub fn encode_png(
    color: png::ColorType,
    depth: png::BitDepth,
    trns: bool,
    (w, h): (u32, u32),
    compression: png::Compression,
    chunk: usize,
) -> Vec<u8> {
    let spp = match color {
        png::ColorType::Grayscale | png::ColorType::Indexed => 1,
        png::ColorType::GrayscaleAlpha => 2,
        png::ColorType::Rgb => 3,
        png::ColorType::Rgba => 4,
    };
    let bits = depth as u32;
    let row_bytes = (w * spp * bits).div_ceil(8) as usize;
    let mut data = vec![0u8; row_bytes * h as usize];
    for y in 0..h {
        let row = &mut data[y as usize * row_bytes..(y as usize + 1) * row_bytes];
        let mut bit = 0usize;
        for x in 0..w {
            for c in 0..spp {
                let v = noise(x, y, c);
                match bits {
                    16 => row[bit / 8..bit / 8 + 2].copy_from_slice(&v.to_be_bytes()),
                    8 => row[bit / 8] = v as u8,
                    n => {
                        let s = (v as u8) >> (8 - n);
                        row[bit / 8] |= s << (8 - n as usize - bit % 8);
                    }
                }
                bit += bits as usize;
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, w, h);
        enc.set_color(color);
        enc.set_depth(depth);
        enc.set_compression(compression);
        enc.set_filter(png::Filter::Adaptive);
        if color == png::ColorType::Indexed {
            let n = 1usize << bits;
            enc.set_palette(
                (0..n)
                    .flat_map(|i| [(i * 37) as u8, (i * 91) as u8, (i * 13 + 5) as u8])
                    .collect::<Vec<u8>>(),
            );
            if trns {
                enc.set_trns((0..n).map(|i| (i * 53) as u8).collect::<Vec<u8>>());
            }
        } else if trns && color == png::ColorType::Rgb {
            let key: Vec<u8> = (0..3)
                .flat_map(|c| {
                    let v = noise(2, 2, c);
                    if bits == 16 {
                        v.to_be_bytes().to_vec()
                    } else {
                        vec![0, v as u8]
                    }
                })
                .collect();
            enc.set_trns(key);
        }
        let mut writer = enc.write_header().expect("header");
        writer.write_image_data(&data).expect("data");
    }
    rechunk(&out, chunk)
}

/// Rewrite a PNG with its IDAT payload cut into chunks of `size` bytes.
pub fn rechunk(png: &[u8], size: usize) -> Vec<u8> {
    let mut chunks = Vec::new();
    let mut idat = Vec::new();
    let mut pos = 8;
    while pos + 12 <= png.len() {
        let len = u32::from_be_bytes(png[pos..pos + 4].try_into().expect("4")) as usize;
        let kind = png[pos + 4..pos + 8].to_vec();
        let data = png[pos + 8..pos + 8 + len].to_vec();
        if kind == b"IDAT" {
            idat.extend_from_slice(&data);
        } else {
            if kind == b"IEND" {
                for part in idat.chunks(size) {
                    chunks.push((b"IDAT".to_vec(), part.to_vec()));
                }
            }
            chunks.push((kind, data));
        }
        pos += 12 + len;
    }
    let mut out = png[..8].to_vec();
    for (kind, data) in chunks {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let mut crc = flate2::Crc::new();
        crc.update(&kind);
        crc.update(&data);
        out.extend_from_slice(&kind);
        out.extend_from_slice(&data);
        out.extend_from_slice(&crc.sum().to_be_bytes());
    }
    out
}

/// A baseline JPEG with restart markers every `interval` MCUs, written by libjpeg (mozjpeg's
/// library with its libjpeg-turbo defaults), `sampling` for the first component.
pub fn encode_jpeg_rst(
    components: u8,
    sampling: (i32, i32),
    interval: u32,
    w: u32,
    h: u32,
) -> Vec<u8> {
    encode_jpeg(components, sampling, interval, false, w, h)
}

/// As [`encode_jpeg_rst`]; `optimize`: Huffman tables fitted to the image (only the DC
/// categories it uses get codes).
#[allow(unsafe_code)] // reason: a test fixture; mozjpeg's safe API cannot set restart intervals
pub fn encode_jpeg(
    components: u8,
    sampling: (i32, i32),
    interval: u32,
    optimize: bool,
    w: u32,
    h: u32,
) -> Vec<u8> {
    use mozjpeg_sys::*;
    let space = match components {
        1 => J_COLOR_SPACE::JCS_GRAYSCALE,
        4 => J_COLOR_SPACE::JCS_CMYK,
        _ => J_COLOR_SPACE::JCS_RGB,
    };
    let data: Vec<u8> = (0..h)
        .flat_map(|y| {
            (0..w).flat_map(move |x| {
                (0..u32::from(components)).map(move |c| (noise(x, y, c) >> 4) as u8 / 2 + 60)
            })
        })
        .collect();
    // SAFETY: the standard libjpeg compression sequence on structs it initialises; the
    // memory destination buffer is malloc'ed by libjpeg and freed here.
    unsafe {
        let mut err: jpeg_error_mgr = std::mem::zeroed();
        let mut cinfo: jpeg_compress_struct = std::mem::zeroed();
        cinfo.common.err = jpeg_std_error(&mut err);
        jpeg_CreateCompress(
            &mut cinfo,
            JPEG_LIB_VERSION,
            std::mem::size_of::<jpeg_compress_struct>(),
        );
        let mut buf: *mut u8 = std::ptr::null_mut();
        let mut size: std::os::raw::c_ulong = 0;
        jpeg_mem_dest(&mut cinfo, &mut buf, &mut size);
        cinfo.image_width = w;
        cinfo.image_height = h;
        cinfo.input_components = i32::from(components);
        cinfo.in_color_space = space;
        jpeg_c_set_int_param(
            &mut cinfo,
            J_INT_PARAM::JINT_COMPRESS_PROFILE,
            JINT_COMPRESS_PROFILE_VALUE::JCP_FASTEST as i32,
        );
        jpeg_set_defaults(&mut cinfo);
        jpeg_set_quality(&mut cinfo, 90, 1);
        if components == 3 {
            let comps = std::slice::from_raw_parts_mut(cinfo.comp_info, 3);
            comps[0].h_samp_factor = sampling.0;
            comps[0].v_samp_factor = sampling.1;
            for c in &mut comps[1..] {
                c.h_samp_factor = 1;
                c.v_samp_factor = 1;
            }
        }
        cinfo.restart_interval = interval;
        cinfo.optimize_coding = i32::from(optimize);
        jpeg_start_compress(&mut cinfo, 1);
        let stride = (w * u32::from(components)) as usize;
        for row in data.chunks(stride) {
            let mut ptr = row.as_ptr();
            jpeg_write_scanlines(&mut cinfo, &mut ptr as *mut *const u8 as JSAMPARRAY, 1);
        }
        jpeg_finish_compress(&mut cinfo);
        let out = std::slice::from_raw_parts(buf, size as usize).to_vec();
        jpeg_destroy_compress(&mut cinfo);
        libc::free(buf.cast());
        out
    }
}
