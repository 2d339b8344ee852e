//! Colours for the login pages' branding: `#rrggbb` / `#rgb` parsing, and the WCAG 2 contrast arithmetic that picks
//! a readable text colour for any brand colour.
use std::fmt;

/// An sRGB colour, parsed from `#rrggbb` or `#rgb` (case-insensitive). Shown as lowercase `#rrggbb`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rgb(pub u8, pub u8, pub u8);

/// Why a colour was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a colour in #rrggbb or #rgb form")]
pub struct NotAColor(pub String);

pub const BLACK: Rgb = Rgb(0, 0, 0);
pub const WHITE: Rgb = Rgb(255, 255, 255);
/// WCAG AA for normal text.
pub const AA_TEXT: f64 = 4.5;

impl Rgb {
    pub fn parse(s: &str) -> Result<Rgb, NotAColor> {
        let bad = || NotAColor(s.chars().take(20).collect());
        let hex = s.strip_prefix('#').ok_or_else(bad)?;
        if !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let digit = |i: usize| u8::from_str_radix(&hex[i..=i], 16).map_err(|_| bad());
        let pair = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
        match hex.len() {
            3 => Ok(Rgb(digit(0)? * 17, digit(1)? * 17, digit(2)? * 17)),
            6 => Ok(Rgb(pair(0)?, pair(2)?, pair(4)?)),
            _ => Err(bad()),
        }
    }

    /// WCAG 2 relative luminance (0 black … 1 white).
    pub fn luminance(self) -> f64 {
        let lin = |c: u8| {
            let c = f64::from(c) / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        };
        0.2126 * lin(self.0) + 0.7152 * lin(self.1) + 0.0722 * lin(self.2)
    }

    /// WCAG 2 contrast ratio with `other` (1 … 21).
    pub fn contrast(self, other: Rgb) -> f64 {
        let (a, b) = (self.luminance(), other.luminance());
        let (hi, lo) = if a > b { (a, b) } else { (b, a) };
        (hi + 0.05) / (lo + 0.05)
    }

    /// Black or white, whichever reads better on this colour (always at least 4.5:1: the worst case, a luminance
    /// near 0.18, still gives about 4.58 with one of them).
    pub fn readable_text(self) -> Rgb {
        if self.contrast(BLACK) >= self.contrast(WHITE) { BLACK } else { WHITE }
    }

    /// This colour mixed towards `toward` by `t` (0 … 1).
    pub fn mix(self, toward: Rgb, t: f64) -> Rgb {
        let m = |a: u8, b: u8| {
            let v = f64::from(a) + (f64::from(b) - f64::from(a)) * t;
            // In 0..=255 by construction; the cast only drops the fraction.
            v.round().clamp(0.0, 255.0) as u8
        };
        Rgb(m(self.0, toward.0), m(self.1, toward.1), m(self.2, toward.2))
    }

    /// The colour nearest to this one (mixed towards black or white, whichever moves away from `background`) that
    /// reads on `background` as text at WCAG AA: this colour itself when it already does. Links and focus rings use
    /// it, so that a light brand colour still gives readable links on a white card, and a dark one on a dark card.
    pub fn readable_on(self, background: Rgb) -> Rgb {
        if self.contrast(background) >= AA_TEXT {
            return self;
        }
        let toward = if background.luminance() > 0.18 { BLACK } else { WHITE };
        (1..=20)
            .map(|i| self.mix(toward, f64::from(i) / 20.0))
            .find(|c| c.contrast(background) >= AA_TEXT)
            .unwrap_or(toward)
    }
}

impl fmt::Display for Rgb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "#{:02x}{:02x}{:02x}", self.0, self.1, self.2)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn both_hex_forms_parse_and_anything_else_is_refused() {
        assert_eq!(Rgb::parse("#0B57D0"), Ok(Rgb(0x0b, 0x57, 0xd0)));
        assert_eq!(Rgb::parse("#fa0"), Ok(Rgb(0xff, 0xaa, 0x00)));
        assert_eq!(Rgb::parse("#fa0").map(|c| c.to_string()), Ok("#ffaa00".to_owned()));
        for bad in ["", "#", "fa0", "#ff", "#ffff", "#gggggg", "#12345678", "red", "#12 456", "#+1+2+3"] {
            assert!(Rgb::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn contrast_follows_wcag() {
        assert!((BLACK.contrast(WHITE) - 21.0).abs() < 1e-9);
        assert!((WHITE.contrast(WHITE) - 1.0).abs() < 1e-9);
        // #767676 on white is the classic 4.54:1.
        let grey = Rgb(0x76, 0x76, 0x76).contrast(WHITE);
        assert!((4.5..4.6).contains(&grey), "{grey}");
        assert_eq!(Rgb(0xff, 0xeb, 0x3b).readable_text(), BLACK);
        assert_eq!(Rgb(0x0b, 0x1a, 0x33).readable_text(), WHITE);
    }

    #[test]
    fn a_light_brand_colour_is_darkened_for_links_on_white() {
        let yellow = Rgb(0xff, 0xeb, 0x3b);
        let link = yellow.readable_on(WHITE);
        assert_ne!(link, yellow);
        assert!(link.contrast(WHITE) >= AA_TEXT);
        let navy = Rgb(0x0b, 0x1a, 0x33);
        assert_eq!(navy.readable_on(WHITE), navy);
        let on_dark = navy.readable_on(Rgb(0x1b, 0x20, 0x27));
        assert!(on_dark.contrast(Rgb(0x1b, 0x20, 0x27)) >= AA_TEXT);
    }

    proptest! {
        #[test]
        fn every_colour_gets_aa_text_and_aa_links(r: u8, g: u8, b: u8) {
            let c = Rgb(r, g, b);
            prop_assert!(c.contrast(c.readable_text()) >= AA_TEXT);
            for card in [WHITE, Rgb(0x1b, 0x20, 0x27)] {
                prop_assert!(c.readable_on(card).contrast(card) >= AA_TEXT);
            }
            prop_assert_eq!(Rgb::parse(&c.to_string()), Ok(c));
        }
    }
}
