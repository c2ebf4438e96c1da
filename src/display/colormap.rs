//! Colormaps for one channel. The tables are `colorous`'s (d3-scale-chromatic's published
//! matplotlib and ColorBrewer tables), never typed in here.

/// A colormap a single channel can be shown through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Colormap {
    Gray,
    Viridis,
    Magma,
    Inferno,
    Plasma,
    Cividis,
    Turbo,
    /// Diverging: blue through white to red (ColorBrewer RdBu, reversed so high is red).
    BlueRed,
    /// Diverging, ColorBrewer Spectral (reversed so high is red).
    Spectral,
}

impl Colormap {
    pub const ALL: [Colormap; 9] = [
        Colormap::Gray,
        Colormap::Viridis,
        Colormap::Magma,
        Colormap::Inferno,
        Colormap::Plasma,
        Colormap::Cividis,
        Colormap::Turbo,
        Colormap::BlueRed,
        Colormap::Spectral,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Colormap::Gray => "gray",
            Colormap::Viridis => "viridis",
            Colormap::Magma => "magma",
            Colormap::Inferno => "inferno",
            Colormap::Plasma => "plasma",
            Colormap::Cividis => "cividis",
            Colormap::Turbo => "turbo",
            Colormap::BlueRed => "bluered",
            Colormap::Spectral => "spectral",
        }
    }

    pub fn parse(s: &str) -> Result<Self, String> {
        let s = s.to_ascii_lowercase();
        let s = match s.as_str() {
            "grey" | "greys" | "grays" => "gray",
            "rdbu" | "coolwarm" => "bluered",
            other => other,
        };
        Colormap::ALL
            .into_iter()
            .find(|c| c.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = Colormap::ALL.iter().map(|c| c.name()).collect();
                format!("unknown colormap '{s}' ({})", names.join(", "))
            })
    }

    /// The colour at `t` in 0..=1.
    pub fn eval(self, t: f64) -> [u8; 3] {
        let t = t.clamp(0.0, 1.0);
        let c = match self {
            Colormap::Gray => {
                let v = (t * 255.0).round() as u8;
                return [v, v, v];
            }
            Colormap::Viridis => colorous::VIRIDIS.eval_continuous(t),
            Colormap::Magma => colorous::MAGMA.eval_continuous(t),
            Colormap::Inferno => colorous::INFERNO.eval_continuous(t),
            Colormap::Plasma => colorous::PLASMA.eval_continuous(t),
            Colormap::Cividis => colorous::CIVIDIS.eval_continuous(t),
            Colormap::Turbo => colorous::TURBO.eval_continuous(t),
            Colormap::BlueRed => colorous::RED_BLUE.eval_continuous(1.0 - t),
            Colormap::Spectral => colorous::SPECTRAL.eval_continuous(1.0 - t),
        };
        [c.r, c.g, c.b]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ends_match_the_published_tables() {
        // matplotlib's viridis runs from #440154 to #fde725.
        let v0 = Colormap::Viridis.eval(0.0);
        let v1 = Colormap::Viridis.eval(1.0);
        assert!(
            v0.iter()
                .zip([0x44, 0x01, 0x54])
                .all(|(a, b)| a.abs_diff(b) <= 2)
        );
        assert!(
            v1.iter()
                .zip([0xfd, 0xe7, 0x25])
                .all(|(a, b)| a.abs_diff(b) <= 2)
        );
        assert_eq!(Colormap::Gray.eval(0.5), [128, 128, 128]);
        // The diverging map is light in the middle, blue low and red high.
        let (lo, mid, hi) = (
            Colormap::BlueRed.eval(0.0),
            Colormap::BlueRed.eval(0.5),
            Colormap::BlueRed.eval(1.0),
        );
        assert!(lo[2] > lo[0] && hi[0] > hi[2] && mid.iter().all(|&c| c > 200));
        assert_eq!(Colormap::parse("Magma"), Ok(Colormap::Magma));
        assert!(Colormap::parse("jet").is_err());
    }
}
