//! `tessera info`: the layout as a table or JSON, streamed so a million descriptors print fast.

use std::io::Write;

use crate::format::{Layout, Page, TileDescriptor};
use crate::image::OpenImage;
use crate::index::StreamIndex;
use crate::levels::BuiltLevels;
use crate::pyramid::Pyramid;

/// Descriptor `i` of `page`, with its checkpoint when `index` covers the page.
fn describe(page: &Page, index: Option<&StreamIndex>, i: u64) -> TileDescriptor {
    match index {
        Some(ix) => ix.descriptor(page, i),
        None => page.descriptor(i),
    }
}

fn index_summary(ix: &StreamIndex) -> String {
    format!(
        "{} checkpoints for {} bands, {:.1} KB, {} of {} bands reached{}",
        ix.checkpoints(),
        ix.bands(),
        ix.memory() as f64 / 1024.0,
        ix.reached(),
        ix.bands(),
        if ix.is_complete() { " (complete)" } else { "" }
    )
}

/// Built levels as `(factor, page of the sidecar)`.
fn built_list(built: Option<&BuiltLevels>) -> Vec<(u32, &Page)> {
    built.map_or_else(Vec::new, |b| {
        b.image
            .layout
            .pages
            .iter()
            .enumerate()
            .map(|(i, p)| (b.factor(i), p))
            .collect()
    })
}

fn json_str(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn tile_json(d: &TileDescriptor) -> String {
    format!(
        "{{\"index\":{},\"decoder\":{},\"extent\":[{},{},{},{}],\"offset\":{},\"length\":{},\"args\":{},\"access\":{}}}",
        d.index,
        json_str(d.decoder),
        d.extent.x0,
        d.extent.y0,
        d.extent.x1,
        d.extent.y1,
        d.offset,
        d.length,
        json_str(&d.args),
        json_str(d.access.name())
    )
}

/// What `info` tells of a page.
struct Facts<'a> {
    layout: &'a Layout,
    page: &'a Page,
    pyramid: Pyramid,
    /// Built levels and the checkpoint index belong to page 0.
    built: Option<&'a BuiltLevels>,
    index: Option<&'a StreamIndex>,
}

fn facts(image: &OpenImage, page_index: usize) -> std::io::Result<Facts<'_>> {
    let page = image.layout.pages.get(page_index);
    let pyramid = Pyramid::of(image, page_index as u32);
    let (Some(page), Some(pyramid)) = (page, pyramid) else {
        return Err(std::io::Error::other(format!(
            "page {page_index} does not exist"
        )));
    };
    Ok(Facts {
        layout: &image.layout,
        page,
        pyramid,
        built: image.built_levels().filter(|_| page_index == 0),
        index: image.index.as_ref().filter(|_| page_index == 0),
    })
}

/// Write the JSON form for page `page`.
pub fn write_json(
    out: &mut impl Write,
    image: &OpenImage,
    page_index: usize,
) -> std::io::Result<()> {
    let Facts {
        layout,
        page,
        pyramid,
        built,
        index,
    } = facts(image, page_index)?;
    write!(
        out,
        "{{\"format\":{},\"width\":{},\"height\":{},\"mode\":{},\"pages\":{},\"page\":{},",
        json_str(layout.format.name()),
        page.width,
        page.height,
        json_str(page.mode.name()),
        layout.pages.len(),
        page_index
    )?;
    if let Some(d) = &page.data {
        let names: Vec<String> = d.names.iter().map(|n| json_str(n)).collect();
        write!(
            out,
            "\"samples\":{{\"type\":{},\"channels\":[{}],\"nodata\":{},\"scale\":{},\"unit\":{}}},",
            json_str(d.sample.name()),
            names.join(","),
            d.nodata.map_or("null".to_string(), |v| format!("{v}")),
            d.scale
                .map_or("null".to_string(), |(s, o)| format!("[{s},{o}]")),
            d.unit.as_deref().map_or("null".to_string(), json_str)
        )?;
    }
    if let Some(p) = &page.physical {
        write!(
            out,
            "\"pixel_size\":{{\"x\":{},\"y\":{},\"unit\":{},\"source\":{}}},",
            p.x,
            p.y,
            json_str(match p.unit {
                crate::physical::Unit::Metre => "m",
                crate::physical::Unit::Degree => "deg",
            }),
            json_str(p.source)
        )?;
    }
    write!(out, "\"orientation\":{},", page.orientation.exif())?;
    write!(out, "\"page_list\":[")?;
    for (i, p) in layout.pages.iter().enumerate() {
        write!(
            out,
            "{}{{\"width\":{},\"height\":{},\"mode\":{},\"descriptors\":{},\"reduced\":{}}}",
            if i > 0 { "," } else { "" },
            p.width,
            p.height,
            json_str(p.mode.name()),
            p.descriptor_count(),
            p.reduced
        )?;
    }
    write!(out, "],\"levels\":[")?;
    for (i, (p, factor)) in pyramid.file_levels().enumerate() {
        write!(
            out,
            "{}{{\"page\":{},\"factor\":{}}}",
            if i > 0 { "," } else { "" },
            p,
            factor
        )?;
    }
    write!(out, "],\"built_levels\":")?;
    match built {
        None => write!(out, "null")?,
        Some(b) => {
            write!(
                out,
                "{{\"path\":{},\"state\":{},\"levels\":[",
                json_str(&b.image.path().display().to_string()),
                json_str(&format!("{:?}", b.status.state()).to_lowercase())
            )?;
            for (i, (f, p)) in built_list(built).into_iter().enumerate() {
                write!(
                    out,
                    "{}{{\"factor\":{f},\"width\":{},\"height\":{},\"descriptors\":{}}}",
                    if i > 0 { "," } else { "" },
                    p.width,
                    p.height,
                    p.descriptor_count()
                )?;
            }
            write!(out, "]}}")?;
        }
    }
    match index {
        None => write!(out, ",\"stream_index\":null")?,
        Some(ix) => write!(
            out,
            ",\"stream_index\":{{\"bands\":{},\"checkpoints\":{},\"bytes\":{},\"reached\":{},\"complete\":{}}}",
            ix.bands(),
            ix.checkpoints(),
            ix.memory(),
            ix.reached(),
            ix.is_complete()
        )?,
    }
    write!(out, ",\"tiles\":[")?;
    for i in 0..page.descriptor_count() {
        if i > 0 {
            out.write_all(b",")?;
        }
        out.write_all(tile_json(&describe(page, index, i)).as_bytes())?;
    }
    writeln!(out, "]}}")
}

fn page_summary(page: &Page) -> String {
    format!(
        "{}x{} {}, {} descriptors{}",
        page.width,
        page.height,
        page.mode,
        page.descriptor_count(),
        if page.reduced {
            " (reduced resolution)"
        } else {
            ""
        }
    )
}

/// Write the human-readable table for page `page_index`.
pub fn write_table(
    out: &mut impl Write,
    path: &str,
    image: &OpenImage,
    page_index: usize,
) -> std::io::Result<()> {
    let Facts {
        layout,
        page,
        pyramid,
        built,
        index,
    } = facts(image, page_index)?;
    let file_len = image.source.len();
    writeln!(out, "file:    {path} ({file_len} bytes)")?;
    writeln!(out, "format:  {}", layout.format.name())?;
    writeln!(out, "size:    {}x{}", page.width, page.height)?;
    writeln!(out, "mode:    {}", page.mode)?;
    if let Some(d) = &page.data {
        writeln!(out, "samples: {}", d.describe())?;
        let unit = d
            .unit
            .as_deref()
            .map(|u| format!(" ({u})"))
            .unwrap_or_default();
        writeln!(out, "channels: {}{unit}", d.names.join(", "))?;
    }
    if let Some(p) = &page.physical {
        writeln!(out, "pixel:   {}", p.describe())?;
    }
    if !page.orientation.is_identity() {
        writeln!(
            out,
            "orient:  {} (Orientation tag {}; shown turned, coordinates are stored pixels)",
            page.orientation.describe(),
            page.orientation.exif()
        )?;
    }
    writeln!(out, "pages:   {}", layout.pages.len())?;
    for (i, p) in layout.pages.iter().enumerate() {
        writeln!(
            out,
            "  {}page {i}: {}",
            if i == page_index { "*" } else { " " },
            page_summary(p)
        )?;
    }
    let levels: Vec<(u32, u32)> = pyramid.file_levels().collect();
    if levels.len() > 1 {
        let list: Vec<String> = levels
            .iter()
            .map(|(p, f)| format!("1/{f} (page {p})"))
            .collect();
        writeln!(out, "levels:  {}", list.join(", "))?;
    }
    if let Some(b) = built {
        let list: Vec<String> = built_list(built)
            .into_iter()
            .map(|(f, p)| {
                format!(
                    "1/{f} ({}x{}, {} descriptors)",
                    p.width,
                    p.height,
                    p.descriptor_count()
                )
            })
            .collect();
        writeln!(out, "built:   {}", list.join(", "))?;
        writeln!(out, "         kept in {}", b.image.path().display())?;
    }
    if let Some(ix) = index {
        writeln!(out, "index:   {}", index_summary(ix))?;
    }
    let access = match index {
        Some(ix) if ix.is_complete() => crate::format::Access::Checkpoint,
        _ => page.access(),
    };
    writeln!(out, "access:  {} ({})", access.name(), access.reason())?;
    writeln!(out)?;
    writeln!(
        out,
        "{:>8}  {:<18}  {:<27}  {:>14}  {:>10}  {:<8}  args",
        "index", "decoder", "extent (x0,y0,x1,y1)", "offset", "length", "access"
    )?;
    let mut past_end = 0u64;
    for i in 0..page.descriptor_count() {
        let d = describe(page, index, i);
        if d.offset.saturating_add(d.length) > file_len {
            past_end += 1;
        }
        let extent = format!(
            "({},{},{},{})",
            d.extent.x0, d.extent.y0, d.extent.x1, d.extent.y1
        );
        writeln!(
            out,
            "{:>8}  {:<18}  {:<27}  {:>14}  {:>10}  {:<8}  {}",
            d.index,
            d.decoder,
            extent,
            d.offset,
            d.length,
            d.access.name(),
            d.args
        )?;
    }
    if past_end > 0 {
        writeln!(
            out,
            "warning: {past_end} descriptors extend past the end of the file"
        )?;
    }
    Ok(())
}
