//! File layouts: what a file holds and where its pixels are, parsed from headers only.
//!
//! Every format parser turns a file into a [`Layout`]: pages of pixels, each with a list of tile
//! descriptors in PIL's sense, `(decoder, extent, offset, args)`, plus the stored length and the
//! access method. A page's descriptors are not stored one by one: they are computed from a
//! compact [`Storage`] so that a file with a million strips costs a few bytes per strip.
//!
//! Descriptors are grouped into *units*: the pieces that decode independently. A unit is one
//! strip or tile (for planar TIFF, the same strip or tile in every plane), or one row band of a
//! raw block. Units form a [`Grid`]: chunk rows (TIFF strips, tile rows, or one raw block), each
//! split into equal row bands so that no unit needs more than a few MB.

pub mod bmp;
pub mod fits;
pub mod jp2;
pub mod jpeg;
pub mod jxl;
pub mod png;
pub mod pnm;
pub mod tiff;
pub mod webp;

use std::fmt;
use std::sync::Arc;

use crate::data::DataInfo;
use crate::error::FormatError;
use crate::sample::RawFormat;
use crate::source::Source;

/// Largest number of bytes one raw row band may span: the 1999 trick splits one raw block into
/// bands of at most this size, so no descriptor needs more than a few MB.
pub const RAW_BAND_BYTES: u64 = 4 << 20;
/// Most rows in a band, so a band of a narrow image stays within a GPU texture's side.
pub const MAX_BAND_ROWS: u32 = 1024;
/// Fewest rows in a band of a very wide image (up to [`MAX_WIDE_BAND_BYTES`]): the viewer
/// reads bands in column windows, and slivers of a dozen rows would mean hundreds of pieces
/// and textures per screen.
pub const MIN_BAND_ROWS: u64 = 32;
/// Largest band a wide image may get to reach [`MIN_BAND_ROWS`].
pub const MAX_WIDE_BAND_BYTES: u64 = 32 << 20;
/// Largest side we accept: keeps `x * y * samples` arithmetic inside u64 everywhere.
pub const MAX_SIDE: u32 = 1 << 30;

/// Which parser produced the layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileFormat {
    Pnm,
    Bmp,
    Tiff,
    Png,
    Jpeg,
    Fits,
    WebP,
    Jpeg2000,
    JpegXl,
}

impl FileFormat {
    pub fn name(self) -> &'static str {
        match self {
            FileFormat::Pnm => "PNM",
            FileFormat::Bmp => "BMP",
            FileFormat::Tiff => "TIFF",
            FileFormat::Png => "PNG",
            FileFormat::Jpeg => "JPEG",
            FileFormat::Fits => "FITS",
            FileFormat::WebP => "WebP",
            FileFormat::Jpeg2000 => "JPEG 2000",
            FileFormat::JpegXl => "JPEG XL",
        }
    }
}

/// The image mode, in PIL's names where PIL has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Bilevel,
    L,
    La,
    P,
    Pa,
    Rgb,
    Rgba,
    Cmyk,
    Cmyka,
    I16,
    La16,
    Rgb16,
    Rgba16,
    Cmyk16,
    /// Scientific samples (see the page's [`DataInfo`]): shown through the display mapping.
    Data,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Bilevel => "1",
            Mode::L => "L",
            Mode::La => "LA",
            Mode::P => "P",
            Mode::Pa => "PA",
            Mode::Rgb => "RGB",
            Mode::Rgba => "RGBA",
            Mode::Cmyk => "CMYK",
            Mode::Cmyka => "CMYKA",
            Mode::I16 => "I;16",
            Mode::La16 => "LA;16",
            Mode::Rgb16 => "RGB;16",
            Mode::Rgba16 => "RGBA;16",
            Mode::Cmyk16 => "CMYK;16",
            Mode::Data => "data",
        }
    }

    pub fn has_alpha(self) -> bool {
        matches!(
            self,
            Mode::La | Mode::Pa | Mode::Rgba | Mode::Cmyka | Mode::La16 | Mode::Rgba16
        )
    }

    /// Names of the native channels, for the pixel inspector.
    pub fn channel_names(self) -> &'static [&'static str] {
        match self {
            Mode::Bilevel | Mode::L | Mode::I16 => &["L"],
            Mode::La | Mode::La16 => &["L", "A"],
            Mode::P => &["index"],
            Mode::Pa => &["index", "A"],
            Mode::Rgb | Mode::Rgb16 => &["R", "G", "B"],
            Mode::Rgba | Mode::Rgba16 => &["R", "G", "B", "A"],
            Mode::Cmyk | Mode::Cmyk16 => &["C", "M", "Y", "K"],
            Mode::Cmyka => &["C", "M", "Y", "K", "A"],
            Mode::Data => &[],
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A rectangle of image pixels, half-open: `x0..x1`, `y0..y1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Extent {
    pub x0: u32,
    pub y0: u32,
    pub x1: u32,
    pub y1: u32,
}

impl Extent {
    pub fn new(x0: u32, y0: u32, x1: u32, y1: u32) -> Self {
        Self { x0, y0, x1, y1 }
    }
    pub fn width(&self) -> u32 {
        self.x1 - self.x0
    }
    pub fn height(&self) -> u32 {
        self.y1 - self.y0
    }
    pub fn is_empty(&self) -> bool {
        self.x1 <= self.x0 || self.y1 <= self.y0
    }
    pub fn intersect(&self, o: &Extent) -> Option<Extent> {
        let e = Extent::new(
            self.x0.max(o.x0),
            self.y0.max(o.y0),
            self.x1.min(o.x1),
            self.y1.min(o.y1),
        );
        (!e.is_empty()).then_some(e)
    }
    pub fn contains(&self, x: u32, y: u32) -> bool {
        x >= self.x0 && x < self.x1 && y >= self.y0 && y < self.y1
    }
    pub fn pixels(&self) -> u64 {
        u64::from(self.width()) * u64::from(self.height())
    }
}

/// How the bytes of a descriptor reach memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Memory-mapped: the stored layout is what the viewer keeps (PIL's rule).
    Mmap,
    /// Positioned reads (`pread`) of just the rows and columns needed.
    Read,
    /// Read whole, then decompressed.
    Decode,
    /// Decoded by streaming from the start of the data (PNG, JPEG).
    Sequential,
    /// Decoded from the band's own checkpoint in a stream (recorded by the first pass).
    Checkpoint,
}

impl Access {
    pub fn name(self) -> &'static str {
        match self {
            Access::Mmap => "mmap",
            Access::Read => "read",
            Access::Decode => "decode",
            Access::Sequential => "sequential",
            Access::Checkpoint => "checkpoint",
        }
    }

    /// Why this access method was chosen, for `info`.
    pub fn reason(self) -> &'static str {
        match self {
            Access::Mmap => "uncompressed and stored as kept in memory (L, P, RGBX, RGBA, CMYK)",
            Access::Read => "uncompressed but stored differently from memory: read rows/columns",
            Access::Decode => "compressed: read the stored bytes whole and decompress",
            Access::Sequential => "only decodable from the start of the stream",
            Access::Checkpoint => "compressed stream: decoded from the band's checkpoint",
        }
    }
}

/// The codec of a piece of stored data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Raw,
    PackBits,
    Lzw,
    Deflate,
    Jpeg,
    /// TIFF ZSTD (50000) and WebP (50001) tiles, decoded by the `tiff` crate.
    Zstd,
    WebP,
    /// A standalone WebP file, decoded whole.
    WebPImage,
    /// TIFF JPEG 2000 tiles (33003, 33005: one codestream per tile), decoded by OpenJPEG.
    Jpeg2000,
    /// TIFF LERC (34887), alone or inside Deflate or ZSTD (GDAL's LercParameters).
    Lerc,
    /// TIFF compression codes the `tiff` crate knows but we name generically.
    TiffOther(u16),
    /// Plain (ASCII) PNM samples, indexed once into bands.
    PnmPlain,
    BmpRle4,
    BmpRle8,
    /// PNG's zlib stream.
    Zip,
}

impl Codec {
    /// The decoder name, as PIL would print it in `im.tile`.
    pub fn decoder_name(self) -> &'static str {
        match self {
            Codec::Raw => "raw",
            Codec::PackBits => "packbits",
            Codec::Lzw => "tiff_lzw",
            Codec::Deflate => "tiff_adobe_deflate",
            Codec::Jpeg => "jpeg",
            Codec::Zstd => "tiff_zstd",
            Codec::WebP => "tiff_webp",
            Codec::WebPImage => "webp",
            Codec::Jpeg2000 => "jpeg2k",
            Codec::Lerc => "tiff_lerc",
            Codec::TiffOther(_) => "libtiff",
            Codec::PnmPlain => "ppm_plain",
            Codec::BmpRle4 => "bmp_rle4",
            Codec::BmpRle8 => "bmp_rle8",
            Codec::Zip => "zip",
        }
    }
}

/// Chunk rows split into equal row bands: the geometry every page's units follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grid {
    pub width: u32,
    pub height: u32,
    /// Chunk size: tile size, or (width, rows per strip), or (width, height) for one raw block.
    pub chunk_w: u32,
    pub chunk_h: u32,
    /// Row bands per chunk row, and their height.
    pub split: u32,
    pub band_h: u32,
}

impl Grid {
    /// A grid of chunks, each chunk row cut into bands of at most `max_band_rows` rows.
    pub fn new(width: u32, height: u32, chunk_w: u32, chunk_h: u32, max_band_rows: u32) -> Self {
        let chunk_w = chunk_w.clamp(1, width.max(1));
        let chunk_h = chunk_h.clamp(1, height.max(1));
        let max_band_rows = max_band_rows.max(1);
        let split = chunk_h.div_ceil(max_band_rows);
        let band_h = chunk_h.div_ceil(split);
        Self {
            width,
            height,
            chunk_w,
            chunk_h,
            split,
            band_h,
        }
    }

    pub fn across(&self) -> u32 {
        self.width.div_ceil(self.chunk_w)
    }
    pub fn chunk_rows(&self) -> u32 {
        self.height.div_ceil(self.chunk_h)
    }
    pub fn unit_rows(&self) -> u64 {
        u64::from(self.chunk_rows()) * u64::from(self.split)
    }
    pub fn unit_count(&self) -> u64 {
        self.unit_rows() * u64::from(self.across())
    }

    /// Rows covered by unit row `r` (chunk row `r / split`, band `r % split`).
    pub fn unit_row_span(&self, r: u64) -> (u32, u32) {
        let chunk_row = (r / u64::from(self.split)) as u32;
        let band = (r % u64::from(self.split)) as u32;
        let chunk_y0 = chunk_row * self.chunk_h;
        let chunk_y1 = (chunk_y0 + self.chunk_h).min(self.height);
        let y0 = (chunk_y0 + band * self.band_h).min(chunk_y1);
        let y1 = (y0 + self.band_h).min(chunk_y1);
        (y0, y1)
    }

    pub fn unit_extent(&self, unit: u64) -> Extent {
        let across = u64::from(self.across());
        let (y0, y1) = self.unit_row_span(unit / across);
        let x0 = (unit % across) as u32 * self.chunk_w;
        let x1 = (x0 + self.chunk_w).min(self.width);
        Extent::new(x0, y0, x1, y1)
    }

    /// (chunk index in the chunk grid, band within the chunk) of a unit.
    pub fn unit_chunk(&self, unit: u64) -> (u64, u32) {
        let across = u64::from(self.across());
        let r = unit / across;
        let col = unit % across;
        let chunk_row = r / u64::from(self.split);
        (chunk_row * across + col, (r % u64::from(self.split)) as u32)
    }

    /// Units intersecting `region`, in row-major order.
    pub fn units_in(&self, region: &Extent) -> impl Iterator<Item = u64> + '_ {
        let region = region
            .intersect(&Extent::new(0, 0, self.width, self.height))
            .unwrap_or(Extent::new(0, 0, 0, 0));
        let across = u64::from(self.across());
        let (c0, c1) = if region.is_empty() {
            (0, 0)
        } else {
            (
                u64::from(region.x0 / self.chunk_w),
                u64::from((region.x1 - 1) / self.chunk_w) + 1,
            )
        };
        let (r0, r1) = if region.is_empty() {
            (0, 0)
        } else {
            (
                self.unit_row_of(region.y0),
                self.unit_row_of(region.y1 - 1) + 1,
            )
        };
        (r0..r1).flat_map(move |r| (c0..c1).map(move |c| r * across + c))
    }

    /// The unit row holding image row `y`.
    pub fn unit_row_of(&self, y: u32) -> u64 {
        let chunk_row = y / self.chunk_h;
        let band = (y % self.chunk_h) / self.band_h;
        u64::from(chunk_row) * u64::from(self.split) + u64::from(band)
    }
}

/// Where a page's pixel bytes are and how they are coded.
#[derive(Debug, Clone)]
pub enum Storage {
    /// One uncompressed block: rows `stride` bytes apart from `base`, bottom-up when `bottom_up`;
    /// `planes` such blocks `plane_stride` bytes apart for planar data (a FITS cube's channels).
    Raw {
        base: u64,
        stride: u64,
        bottom_up: bool,
        planes: u32,
        plane_stride: u64,
    },
    /// TIFF strips or tiles, one offset/length per chunk and plane (plane-major, like TIFF).
    Chunks {
        offsets: Arc<Vec<u64>>,
        lengths: Arc<Vec<u64>>,
        codec: Codec,
        /// The TIFF compression code and predictor, shown in the args.
        compression: u16,
        predictor: u16,
        planes: u32,
        /// Bytes per row of one chunk of one plane when uncompressed.
        chunk_stride: u64,
        /// Index of the page's IFD, for the `tiff` crate's decoder.
        ifd_index: usize,
    },
    /// Bands found by one indexing pass over a sequential encoding (ASCII PNM, BMP RLE).
    Indexed {
        offsets: Arc<Vec<u64>>,
        lengths: Arc<Vec<u64>>,
        /// BMP RLE: the pen (file row from the bottom, x) where each band's stream starts.
        pens: Arc<Vec<(u32, u32)>>,
        codec: Codec,
    },
    /// Tiles of a FITS tile-compressed image (`.fz`): a unit is a tile column by a band of
    /// whole tile rows, decoded from the tiles it covers (rows are stored bottom-up).
    Tiles(Arc<fits::TileTable>),
    /// A JPEG 2000 codestream at one of its resolution levels (reduce factor): a unit is a
    /// rectangle of its tiles, or an area of an untiled codestream.
    J2k {
        stream: Arc<jp2::Codestream>,
        reduce: u8,
    },
    /// A JPEG XL image: a unit is a square rendered cropped from the shared decoder.
    Jxl(Arc<jxl::Decoder>),
    /// A stream that decodes only from its start (PNG, JPEG): every band points at it until
    /// a pass has recorded checkpoints (`index`).
    Stream {
        offset: u64,
        length: u64,
        codec: Codec,
        interlaced: bool,
        /// JPEG with restart markers: bands are runs of whole restart intervals.
        restart: Option<Restart>,
        /// Baseline JPEG without restart markers: bands are runs of MCU rows, reached through
        /// checkpoints an entropy-decoding pass records.
        scan: Option<ScanLayout>,
    },
}

/// The kinds of sequential stream: how a stream page's bands are reached. Decided once, from
/// the layout, for the decoder, the loader, the level builder and the checkpoint index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// PNG, not interlaced: one zlib stream; bands resume from inflater checkpoints.
    Png,
    /// Adam7 PNG: every band needs the whole stream (rows come from all seven passes).
    PngInterlaced,
    /// Baseline JPEG with restart markers: bands of whole intervals, found by a marker scan.
    JpegRestart(Restart),
    /// Baseline JPEG without restart markers: bands of MCU rows, reached through checkpoints
    /// an entropy-decoding pass records.
    JpegScanned(ScanLayout),
    /// Baseline JPEG that cannot be cut (restart intervals too few to make bands, or
    /// components in separate scans): decoded from the start.
    JpegWhole,
    /// Progressive JPEG: decoded from the start, libjpeg holding every DCT coefficient.
    JpegProgressive,
    /// WebP: its decoder returns whole images only, so every band needs a whole decode; one
    /// decode keeps the bands asked for.
    WebP,
}

impl StreamKind {
    /// Whether bands get checkpoints, kept in a `StreamIndex`.
    pub fn has_checkpoints(self) -> bool {
        matches!(
            self,
            StreamKind::Png | StreamKind::JpegRestart(_) | StreamKind::JpegScanned(_)
        )
    }

    /// Whether a band decodes on its own once the index has it (a quick marker scan or the
    /// entropy pass finds every band), never by streaming through the bands above it.
    pub fn bands_decode_alone(self) -> bool {
        matches!(
            self,
            StreamKind::JpegRestart(_) | StreamKind::JpegScanned(_)
        )
    }
}

/// How a baseline JPEG scan without restart markers is cut into bands of MCU rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanLayout {
    /// First entropy-coded byte of the scan.
    pub entropy: u64,
    /// Offset of the SOF marker, whose height a band's decoder gets patched.
    pub sof: u64,
    /// MCU height in pixels.
    pub mcu_h: u32,
    pub mcu_rows: u32,
    pub mcus_per_row: u32,
}

/// How a baseline JPEG scan's restart intervals make bands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Restart {
    /// First entropy-coded byte of the scan.
    pub entropy: u64,
    /// Offset of the SOF marker, whose height a band's decoder gets patched.
    pub sof: u64,
    /// MCUs per restart interval (DRI).
    pub interval: u16,
    /// Rows per band: a multiple of the rows in which intervals realign with the left edge.
    pub band_rows: u32,
    pub intervals_per_band: u64,
    /// Intervals from one left-edge realignment to the next, and the rows they cover: a band
    /// is decoded with one such group above and below it, so that chroma upsampling at its
    /// edges sees the same neighbours as in a whole decode.
    pub intervals_per_group: u64,
    pub group_rows: u32,
    pub mcu_rows: u64,
    pub mcus_per_row: u64,
}

/// One page (image) of a file.
#[derive(Debug, Clone)]
pub struct Page {
    pub width: u32,
    pub height: u32,
    pub mode: Mode,
    /// How stored samples become pixels (raw storage and decompressed chunks alike).
    pub raw: RawFormat,
    pub palette: Option<Arc<Vec<[u8; 4]>>>,
    pub grid: Grid,
    pub storage: Storage,
    /// TIFF NewSubfileType bit 0: a reduced-resolution copy of another page.
    pub reduced: bool,
    /// What a data page's channels are ([`Mode::Data`] pages only).
    pub data: Option<Arc<DataInfo>>,
    /// How big a pixel is, when the file says.
    pub physical: Option<crate::physical::PixelSize>,
    /// How the stored rows are meant to be shown (TIFF/EXIF `Orientation`); the viewer
    /// starts with it, and locations stay in stored pixels.
    pub orientation: crate::orientation::Orientation,
}

/// A tile descriptor, materialised for display.
#[derive(Debug, Clone, PartialEq)]
pub struct TileDescriptor {
    pub index: u64,
    pub decoder: &'static str,
    pub extent: Extent,
    pub offset: u64,
    pub length: u64,
    pub args: String,
    pub access: Access,
}

impl Page {
    pub fn extent(&self) -> Extent {
        Extent::new(0, 0, self.width, self.height)
    }

    /// Names of the native channels, for the pixel inspector.
    pub fn channel_names(&self) -> Vec<String> {
        match &self.data {
            Some(d) => d.names.clone(),
            None => self
                .mode
                .channel_names()
                .iter()
                .map(|s| s.to_string())
                .collect(),
        }
    }

    pub fn unit_count(&self) -> u64 {
        self.grid.unit_count()
    }

    pub fn planes(&self) -> u32 {
        match &self.storage {
            Storage::Chunks { planes, .. } | Storage::Raw { planes, .. } => *planes,
            Storage::Tiles(t) => t.planes,
            _ => 1,
        }
    }

    pub fn descriptor_count(&self) -> u64 {
        self.unit_count() * u64::from(self.planes())
    }

    /// The descriptors a unit is made of (one per plane).
    pub fn unit_descriptors(&self, unit: u64) -> impl Iterator<Item = u64> + use<> {
        let n = self.unit_count();
        (0..u64::from(self.planes())).map(move |p| p * n + unit)
    }

    /// The unit a descriptor belongs to.
    pub fn descriptor_unit(&self, index: u64) -> u64 {
        index % self.unit_count().max(1)
    }

    /// The kind of sequential stream the page is, if it is one.
    pub fn stream_kind(&self) -> Option<StreamKind> {
        let Storage::Stream {
            codec,
            interlaced,
            restart,
            scan,
            ..
        } = &self.storage
        else {
            return None;
        };
        Some(match (codec, interlaced, restart, scan) {
            (Codec::WebPImage, _, _, _) => StreamKind::WebP,
            (Codec::Zip, true, _, _) => StreamKind::PngInterlaced,
            (Codec::Zip, false, _, _) => StreamKind::Png,
            (_, true, _, _) => StreamKind::JpegProgressive,
            (_, _, Some(r), _) => StreamKind::JpegRestart(*r),
            (_, _, None, Some(l)) => StreamKind::JpegScanned(*l),
            _ => StreamKind::JpegWhole,
        })
    }

    /// Whether a unit's bytes are raw and can be read for a column window only.
    pub fn column_readable(&self) -> bool {
        match &self.storage {
            Storage::Raw { .. } => true,
            Storage::Chunks { codec, .. } => *codec == Codec::Raw,
            _ => false,
        }
    }

    pub fn access(&self) -> Access {
        match &self.storage {
            Storage::Raw { .. }
            | Storage::Chunks {
                codec: Codec::Raw, ..
            } => {
                if self.raw.is_memory_layout() && self.planes() == 1 {
                    Access::Mmap
                } else {
                    Access::Read
                }
            }
            Storage::Chunks { .. }
            | Storage::Indexed { .. }
            | Storage::Tiles(_)
            | Storage::J2k { .. }
            | Storage::Jxl(_) => Access::Decode,
            Storage::Stream { .. } => Access::Sequential,
        }
    }

    /// Byte position and length of unit `unit`'s data in plane `plane`; for raw data, the
    /// position of the band's first stored row and the band's stored length.
    pub fn unit_bytes(&self, unit: u64, plane: u32) -> (u64, u64) {
        let ext = self.grid.unit_extent(unit);
        match &self.storage {
            Storage::Raw {
                base,
                stride,
                bottom_up,
                plane_stride,
                ..
            } => {
                let first_row = if *bottom_up {
                    u64::from(self.height - ext.y1)
                } else {
                    u64::from(ext.y0)
                };
                (
                    base + u64::from(plane) * plane_stride + first_row * stride,
                    u64::from(ext.height()) * stride,
                )
            }
            Storage::Chunks {
                offsets,
                lengths,
                codec,
                chunk_stride,
                ..
            } => {
                let (chunk, band) = self.grid.unit_chunk(unit);
                let chunks = u64::from(self.grid.across()) * u64::from(self.grid.chunk_rows());
                let i = (u64::from(plane) * chunks + chunk) as usize;
                let (off, len) = (
                    offsets.get(i).copied().unwrap_or(0),
                    lengths.get(i).copied().unwrap_or(0),
                );
                if *codec == Codec::Raw && self.grid.split > 1 {
                    let skip = u64::from(band) * u64::from(self.grid.band_h) * chunk_stride;
                    let band_len = u64::from(ext.height()) * chunk_stride;
                    (off + skip, band_len.min(len.saturating_sub(skip)))
                } else {
                    (off, len)
                }
            }
            Storage::Indexed {
                offsets, lengths, ..
            } => (
                offsets.get(unit as usize).copied().unwrap_or(0),
                lengths.get(unit as usize).copied().unwrap_or(0),
            ),
            Storage::Tiles(t) => {
                // The first tile the unit needs, and the bytes of all of them.
                let col = (unit % u64::from(self.grid.across())) as u32;
                let rows = t.tile_rows(ext.y0, ext.y1);
                let first = t.index(col, *rows.start(), plane);
                let len = rows
                    .map(|r| t.tiles.get(t.index(col, r, plane)).map_or(0, |x| x.1))
                    .sum();
                (t.tiles.get(first).map_or(0, |x| x.0), len)
            }
            Storage::J2k { stream, reduce } => {
                let tiles = stream.tiles_in(stream.reference_area(u32::from(*reduce), &ext));
                let first = tiles
                    .first()
                    .and_then(|&t| stream.tiles.get(t))
                    .and_then(|p| p.first())
                    .map_or(0, |p| p.0);
                (first, stream.tile_bytes(&tiles))
            }
            // The decoder holds the whole codestream; a unit has no bytes of its own.
            Storage::Jxl(_) => (0, 0),
            Storage::Stream { offset, length, .. } => (*offset, *length),
        }
    }

    /// Materialise descriptor `index` (plane-major order, as stored in TIFF).
    pub fn descriptor(&self, index: u64) -> TileDescriptor {
        let units = self.unit_count().max(1);
        let unit = index % units;
        let plane = (index / units) as u32;
        let extent = self.grid.unit_extent(unit);
        let (offset, length) = self.unit_bytes(unit, plane);
        let access = self.access();
        let (decoder, args) = match &self.storage {
            Storage::Raw {
                stride,
                bottom_up,
                planes,
                ..
            } => (
                Codec::Raw.decoder_name(),
                format!(
                    "('{}', {}, {})",
                    if *planes > 1 {
                        self.raw.plane_rawmode(plane)
                    } else {
                        self.raw.rawmode()
                    },
                    stride,
                    if *bottom_up { -1 } else { 1 }
                ),
            ),
            Storage::Chunks {
                codec,
                compression,
                predictor,
                planes,
                chunk_stride,
                ..
            } => {
                let rawmode = if *planes > 1 {
                    self.raw.plane_rawmode(plane)
                } else {
                    self.raw.rawmode()
                };
                let args = if *codec == Codec::Raw {
                    format!("('{rawmode}', {chunk_stride}, 1)")
                } else {
                    format!("('{rawmode}', compression={compression}, predictor={predictor})")
                };
                (codec.decoder_name(), args)
            }
            Storage::Indexed { codec, .. } => (
                codec.decoder_name(),
                format!("('{}', band={unit})", self.raw.rawmode()),
            ),
            Storage::Tiles(t) => {
                let col = (unit % u64::from(self.grid.across())) as u32;
                let rows = t.tile_rows(extent.y0, extent.y1);
                let (a, b) = (
                    t.index(col, *rows.start(), plane),
                    t.index(col, *rows.end(), plane),
                );
                let n = rows.count();
                let tiles = match (n, t.across) {
                    (1, _) => a.to_string(),
                    (2, _) => format!("{a}+{b}"),
                    (_, 1) => format!("{a}..={b}"),
                    (_, step) => format!("{a}..={b} every {step}"),
                };
                (
                    "fits_tile",
                    format!(
                        "('{}', {}, tiles {})",
                        t.codec.name(),
                        if self.planes() > 1 {
                            self.raw.plane_rawmode(plane)
                        } else {
                            self.raw.rawmode()
                        },
                        tiles
                    ),
                )
            }
            Storage::J2k { stream, reduce } => {
                let tiles = stream.tiles_in(stream.reference_area(u32::from(*reduce), &extent));
                let (a, b) = (
                    tiles.first().copied().unwrap_or(0),
                    tiles.last().copied().unwrap_or(0),
                );
                let tiles = match tiles.len() {
                    1 => format!("tile {a}"),
                    n => format!("tiles {a}..={b} ({n})"),
                };
                (
                    Codec::Jpeg2000.decoder_name(),
                    format!("('{}', reduce={reduce}, {tiles})", self.raw.rawmode()),
                )
            }
            Storage::Jxl(_) => (
                "jpegxl",
                format!(
                    "('{}', crop {}x{}+{}+{})",
                    self.raw.rawmode(),
                    extent.width(),
                    extent.height(),
                    extent.x0,
                    extent.y0
                ),
            ),
            Storage::Stream {
                codec, interlaced, ..
            } => (
                codec.decoder_name(),
                format!(
                    "('{}', rows {}..{}{})",
                    self.raw.rawmode(),
                    extent.y0,
                    extent.y1,
                    if *interlaced { ", adam7" } else { "" }
                ),
            ),
        };
        TileDescriptor {
            index,
            decoder,
            extent,
            offset,
            length,
            args,
            access,
        }
    }
}

/// A parsed file: its format and pages.
#[derive(Debug, Clone)]
pub struct Layout {
    pub format: FileFormat,
    pub pages: Vec<Page>,
}

impl Layout {
    /// The reduced-resolution pages of page `base` (TIFF NewSubfileType 1, as
    /// `vips tiffsave --pyramid` and `gdaladdo` write) as (page, factor), finest first, the
    /// page itself (factor 1) included: pages of the same mode whose size is the base size
    /// divided by a power of two (rounded either way, as writers differ). The raw material of
    /// `pyramid::Pyramid`, which is the one model of levels.
    pub fn reductions(&self, base: usize) -> Vec<(usize, u32)> {
        let Some(b) = self.pages.get(base) else {
            return Vec::new();
        };
        let mut found = vec![(base, 1u32)];
        if b.reduced {
            return found;
        }
        for (i, p) in self.pages.iter().enumerate() {
            if i == base || !p.reduced || p.mode != b.mode {
                continue;
            }
            let factor = (f64::from(b.width) / f64::from(p.width)).round() as u32;
            let fits = |full: u32, reduced: u32| {
                full.div_ceil(factor) == reduced || full / factor == reduced
            };
            if factor >= 2
                && factor.is_power_of_two()
                && fits(b.width, p.width)
                && fits(b.height, p.height)
                && !found.iter().any(|&(_, f)| f == factor)
            {
                found.push((i, factor));
            }
        }
        found.sort_by_key(|&(_, f)| f);
        found
    }
}

/// Check image dimensions before any arithmetic or allocation depends on them.
pub fn check_dimensions(width: u64, height: u64) -> Result<(u32, u32), FormatError> {
    if width == 0 || height == 0 {
        return Err(FormatError::invalid(format!(
            "image size {width}x{height} (zero)"
        )));
    }
    if width > u64::from(MAX_SIDE) || height > u64::from(MAX_SIDE) {
        return Err(FormatError::too_large(format!(
            "image size {width}x{height} exceeds {MAX_SIDE} pixels a side"
        )));
    }
    Ok((width as u32, height as u32))
}

/// Rows per band for a raw block with `stride` bytes a row.
pub fn raw_band_rows(stride: u64) -> u32 {
    let stride = stride.max(1);
    let floor = (MAX_WIDE_BAND_BYTES / stride).min(MIN_BAND_ROWS);
    (RAW_BAND_BYTES / stride)
        .max(floor)
        .clamp(1, u64::from(MAX_BAND_ROWS)) as u32
}

/// Decoded bytes (as RGBA) a band of a compressed stream (PNG, JPEG) aims for: each band gets
/// a checkpoint, so this trades the index's size against the rows decoded in vain per view.
pub const STREAM_BAND_BYTES: u64 = 16 << 20;

/// Rows per band of a stream image `width` pixels wide.
pub fn stream_band_rows(width: u32) -> u32 {
    (STREAM_BAND_BYTES / (u64::from(width) * 4).max(1)).clamp(16, u64::from(MAX_BAND_ROWS)) as u32
}

/// Check that `len` bytes at `offset` lie inside a file of `file_len` bytes.
pub fn check_span(offset: u64, len: u64, file_len: u64, what: &str) -> Result<(), FormatError> {
    match offset.checked_add(len) {
        Some(end) if end <= file_len => Ok(()),
        _ => Err(FormatError::truncated(format!(
            "{what} needs bytes {offset}..{} but the file has {file_len}",
            offset.saturating_add(len)
        ))),
    }
}

/// Sniff the magic bytes and parse the header with the matching parser.
pub fn parse(source: &Source) -> Result<Layout, FormatError> {
    parse_with_progress(source, &crate::progress::Progress::new())
}

/// [`parse`], reporting the indexing pass of sequential encodings (ASCII PNM, BMP RLE) to
/// `progress`, which can also cancel it.
pub fn parse_with_progress(
    source: &Source,
    progress: &crate::progress::Progress,
) -> Result<Layout, FormatError> {
    let mut magic = [0u8; 12];
    // FITS starts with a card: `SIMPLE  =`.
    let n = source.read_some(0, &mut magic)?;
    let magic = &magic[..n];
    if n == 0 {
        return Err(FormatError::invalid("empty file"));
    }
    if magic.starts_with(b"\x89PNG\r\n\x1a\n") {
        png::parse(source)
    } else if magic.starts_with(&[0xFF, 0xD8, 0xFF]) {
        jpeg::parse(source)
    } else if magic.starts_with(b"II*\0")
        || magic.starts_with(b"MM\0*")
        || magic.starts_with(b"II+\0")
        || magic.starts_with(b"MM\0+")
    {
        tiff::parse(source)
    } else if jxl::sniff(magic) {
        jxl::parse(source)
    } else if jp2::sniff(magic) {
        jp2::parse(source)
    } else if webp::sniff(magic) {
        webp::parse(source)
    } else if fits::sniff(magic) {
        fits::parse(source)
    } else if magic.starts_with(b"BM") {
        bmp::parse(source, progress)
    } else if magic.len() >= 2 && magic[0] == b'P' && (b'1'..=b'7').contains(&magic[1]) {
        pnm::parse(source, progress)
    } else {
        let hex: Vec<String> = magic.iter().take(8).map(|b| format!("{b:02x}")).collect();
        Err(FormatError::UnknownFormat(hex.join(" ")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_bands_cover_rows_exactly_once() {
        // 3 strips of 10 rows, split into bands of at most 4 rows: 4+3+3 per strip.
        let g = Grid::new(7, 27, 7, 10, 4);
        assert_eq!((g.split, g.band_h), (3, 4));
        let mut covered = vec![0u32; 27];
        for u in 0..g.unit_count() {
            let e = g.unit_extent(u);
            for y in e.y0..e.y1 {
                covered[y as usize] += 1;
            }
        }
        assert!(covered.iter().all(|&c| c == 1), "{covered:?}");
        for y in 0..27 {
            let e = g.unit_extent(g.unit_row_of(y));
            assert!(e.y0 <= y && y < e.y1, "row {y} in {e:?}");
        }
    }

    #[test]
    fn units_in_region_match_brute_force() {
        let g = Grid::new(100, 90, 16, 32, 1024);
        let region = Extent::new(15, 31, 49, 65);
        let got: Vec<u64> = g.units_in(&region).collect();
        let want: Vec<u64> = (0..g.unit_count())
            .filter(|&u| g.unit_extent(u).intersect(&region).is_some())
            .collect();
        assert_eq!(got, want);
        assert_eq!(g.units_in(&Extent::new(200, 0, 300, 10)).count(), 0);
    }

    #[test]
    fn dimension_checks() {
        assert!(check_dimensions(0, 5).is_err());
        assert!(check_dimensions(u64::from(MAX_SIDE) + 1, 5).is_err());
        assert_eq!(check_dimensions(3, 5).ok(), Some((3, 3 + 2)));
        assert!(check_span(10, u64::MAX, 100, "x").is_err());
        assert!(check_span(10, 90, 100, "x").is_ok());
    }
}
