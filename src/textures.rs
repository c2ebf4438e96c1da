//! GPU textures of decoded pieces: an LRU bounded in bytes. Dropping a `TextureHandle` frees
//! its GPU memory, so evicting from this LRU *is* freeing GPU memory. A piece larger than the
//! GPU's `max_texture_side` is split into several textures.

use lru::LruCache;

use crate::cache::PieceKey;
use crate::decode::Piece;
use crate::format::Extent;

/// Crisp pixels when magnified (above 100 %), smooth when minified.
pub const TEXTURE_OPTIONS: egui::TextureOptions = egui::TextureOptions {
    magnification: egui::TextureFilter::Nearest,
    minification: egui::TextureFilter::Linear,
    wrap_mode: egui::TextureWrapMode::ClampToEdge,
    mipmap_mode: None,
};

/// The textures of one piece, each with the image extent it covers.
pub struct PieceTextures {
    pub parts: Vec<(egui::TextureHandle, Extent)>,
    pub bytes: usize,
    /// The display mapping's generation the pixels were mapped with (0 for pictures).
    pub generation: u64,
}

pub struct TextureCache {
    lru: LruCache<PieceKey, PieceTextures>,
    bytes: usize,
    budget: usize,
}

impl TextureCache {
    pub fn new(budget_bytes: usize) -> Self {
        Self {
            lru: LruCache::unbounded(),
            bytes: 0,
            budget: budget_bytes,
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn get(&mut self, key: &PieceKey) -> Option<&PieceTextures> {
        self.lru.get(key)
    }

    /// Look without marking the textures as used (the navigator's thumbnail).
    pub fn peek(&self, key: &PieceKey) -> Option<&PieceTextures> {
        self.lru.peek(key)
    }

    pub fn contains(&self, key: &PieceKey) -> bool {
        self.lru.contains(key)
    }

    /// Whether the textures of `key` exist and were mapped with `generation`.
    pub fn is_current(&self, key: &PieceKey, generation: u64) -> bool {
        self.lru
            .peek(key)
            .is_some_and(|t| t.generation == generation)
    }

    /// Upload `piece` (split to fit `max_side`); returns the bytes uploaded. `opaque` pieces
    /// skip premultiplication (it is the identity when alpha is 255).
    pub fn upload(
        &mut self,
        ctx: &egui::Context,
        key: PieceKey,
        piece: &Piece,
        max_side: usize,
        opaque: bool,
    ) -> usize {
        self.upload_rgba(ctx, key, piece.extent, &piece.rgba, max_side, opaque, 0)
    }

    /// Upload RGBA pixels of `e` (a data piece mapped with display `generation`). Textures
    /// already there for `key` with the same parts are updated in place.
    #[allow(clippy::too_many_arguments)] // reason: two call sites, plain values
    pub fn upload_rgba(
        &mut self,
        ctx: &egui::Context,
        key: PieceKey,
        e: Extent,
        rgba: &[u8],
        max_side: usize,
        opaque: bool,
        generation: u64,
    ) -> usize {
        let mut old = self.lru.pop(&key);
        if let Some(o) = &old {
            self.bytes -= o.bytes;
        }
        let side = max_side.clamp(64, 16384) as u32;
        let mut parts = Vec::new();
        let mut bytes = 0;
        let pw = e.width() as usize;
        let mut y = e.y0;
        while y < e.y1 {
            let y1 = (y + side).min(e.y1);
            let mut x = e.x0;
            while x < e.x1 {
                let x1 = (x + side).min(e.x1);
                let (w, h) = ((x1 - x) as usize, (y1 - y) as usize);
                let mut pixels = Vec::with_capacity(w * h);
                for row in (y - e.y0) as usize..(y1 - e.y0) as usize {
                    let start = (row * pw + (x - e.x0) as usize) * 4;
                    let src = rgba[start..start + w * 4].chunks_exact(4);
                    if opaque {
                        pixels.extend(src.map(|p| egui::Color32::from_rgb(p[0], p[1], p[2])));
                    } else {
                        pixels.extend(src.map(|p| {
                            egui::Color32::from_rgba_unmultiplied(p[0], p[1], p[2], p[3])
                        }));
                    }
                }
                let image = egui::ColorImage::new([w, h], pixels);
                let part = Extent::new(x, y, x1, y1);
                // Same part as before (a re-map): update the texture in place.
                let reuse = old.as_mut().and_then(|o| {
                    let i = o.parts.iter().position(|(_, e)| *e == part)?;
                    Some(o.parts.swap_remove(i).0)
                });
                let handle = match reuse {
                    Some(mut handle) => {
                        handle.set(image, TEXTURE_OPTIONS);
                        handle
                    }
                    None => {
                        let name =
                            format!("piece-{:?}-{}-{}-{x}-{y}", key.source, key.unit, key.x0);
                        ctx.load_texture(name, image, TEXTURE_OPTIONS)
                    }
                };
                parts.push((handle, part));
                bytes += w * h * 4;
                x = x1;
            }
            y = y1;
        }
        drop(old);
        while self.bytes + bytes > self.budget {
            match self.lru.pop_lru() {
                Some((_, old)) => self.bytes -= old.bytes,
                None => break,
            }
        }
        self.bytes += bytes;
        self.lru.put(
            key,
            PieceTextures {
                parts,
                bytes,
                generation,
            },
        );
        bytes
    }

    pub fn clear(&mut self) {
        self.lru.clear();
        self.bytes = 0;
    }
}
