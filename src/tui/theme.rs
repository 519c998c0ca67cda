//! Colour themes: TOML files (the shipped ones in `themes/`, compiled in; user ones in
//! `<config dir>/themes/NAME.toml`) parsed once into a [`Theme`] of ready-made styles, so render
//! code names a role (`theme.critical`) and never a colour.
//!
//! Colours are degraded to what the terminal can show ([`ColorDepth`]): truecolour only when
//! `COLORTERM` says `truecolor`/`24bit`, else the nearest of the 256-colour palette, else of the
//! 16 ANSI colours; with `NO_COLOR` no colour at all, and a style that relied on a background
//! colour (the selection, the READ-ONLY badge) becomes reversed so it stays visible.
//!
//! Parsing is pure (`&str -> Result`); only [`ThemeCatalog::load`] reads files.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use ratatui::style::{Color, Modifier, Style};
use serde::Deserialize;

/// The themes shipped with rampart, by name.
pub const BUILTIN: &[(&str, &str)] = &[
    ("default", include_str!("../../themes/default.toml")),
    ("light", include_str!("../../themes/light.toml")),
    (
        "high-contrast",
        include_str!("../../themes/high-contrast.toml"),
    ),
    ("mono", include_str!("../../themes/mono.toml")),
];

/// A theme file that could not be used.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum ThemeError {
    #[error("{file}:{line}: {message}")]
    Invalid {
        file: String,
        line: usize,
        message: String,
    },
    #[error("no theme named {name:?} (available: {available})")]
    Unknown { name: String, available: String },
    #[error("{}: cannot read: {message}", path.display())]
    Read { path: PathBuf, message: String },
}

/// How many colours the terminal shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ColorDepth {
    /// No colour (`NO_COLOR`, `TERM=dumb`): modifiers only.
    None,
    Ansi16,
    Ansi256,
    TrueColor,
}

impl ColorDepth {
    /// Decides from the environment's values (passed in, so this stays pure and testable):
    /// `NO_COLOR` (any non-empty value) wins; `COLORTERM=truecolor|24bit` means 24-bit;
    /// a `TERM` naming 256 colours means 256; `TERM=dumb` means none; anything else 16.
    pub fn detect(no_color: Option<&str>, colorterm: Option<&str>, term: Option<&str>) -> Self {
        if no_color.is_some_and(|v| !v.is_empty()) {
            return ColorDepth::None;
        }
        let term = term.unwrap_or("");
        if term == "dumb" {
            return ColorDepth::None;
        }
        if colorterm.is_some_and(|c| {
            let c = c.to_ascii_lowercase();
            c == "truecolor" || c == "24bit"
        }) {
            return ColorDepth::TrueColor;
        }
        if term.contains("256color") || term.contains("truecolor") || term.contains("direct") {
            return ColorDepth::Ansi256;
        }
        ColorDepth::Ansi16
    }

    /// [`ColorDepth::detect`] on this process's environment.
    pub fn from_env() -> Self {
        let get = |k: &str| std::env::var(k).ok();
        ColorDepth::detect(
            get("NO_COLOR").as_deref(),
            get("COLORTERM").as_deref(),
            get("TERM").as_deref(),
        )
    }
}

/// One style as written in a theme file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct StyleSpec {
    fg: Option<toml::Spanned<String>>,
    bg: Option<toml::Spanned<String>>,
    #[serde(default)]
    bold: bool,
    #[serde(default)]
    dim: bool,
    #[serde(default)]
    italic: bool,
    #[serde(default)]
    underline: bool,
    #[serde(default)]
    reversed: bool,
}

/// A style with its colours parsed but not yet degraded.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct RawStyle {
    fg: Option<Color>,
    bg: Option<Color>,
    modifier: Modifier,
}

impl RawStyle {
    fn resolve(self, depth: ColorDepth) -> Style {
        let mut style = Style::default().add_modifier(self.modifier);
        if depth == ColorDepth::None {
            // Without colour a background is what made the style stand out: keep it visible.
            if self.bg.is_some_and(|c| c != Color::Reset) {
                style = style.add_modifier(Modifier::REVERSED);
            }
            return style;
        }
        if let Some(fg) = self.fg {
            style = style.fg(degrade(fg, depth));
        }
        if let Some(bg) = self.bg {
            style = style.bg(degrade(bg, depth));
        }
        style
    }
}

macro_rules! theme_roles {
    ($($(#[$doc:meta])* $field:ident),* $(,)?) => {
        #[derive(Debug, Clone, Default, Deserialize)]
        #[serde(rename_all = "kebab-case", deny_unknown_fields)]
        struct StylesSpec {
            $(#[serde(default)] $field: Option<StyleSpec>,)*
        }

        /// A parsed theme file, colours not yet degraded.
        #[derive(Debug, Clone, PartialEq)]
        pub struct ThemeSpec {
            pub name: String,
            pub description: String,
            $($field: RawStyle,)*
        }

        /// Every style the console draws with, resolved for one terminal.
        #[derive(Debug, Clone, PartialEq)]
        pub struct Theme {
            pub name: String,
            pub depth: ColorDepth,
            $($(#[$doc])* pub $field: Style,)*
        }

        impl ThemeSpec {
            /// Resolves every style for a terminal of `depth`.
            pub fn resolve(&self, depth: ColorDepth) -> Theme {
                Theme {
                    name: self.name.clone(),
                    depth,
                    $($field: self.$field.resolve(depth),)*
                }
            }

            fn from_styles(
                name: &str,
                description: String,
                styles: StylesSpec,
                base: Option<&ThemeSpec>,
                file: &str,
                text: &str,
            ) -> Result<ThemeSpec, ThemeError> {
                Ok(ThemeSpec {
                    name: name.to_string(),
                    description,
                    $($field: match styles.$field {
                        Some(s) => raw_style(&s, file, text)?,
                        None => base.map(|b| b.$field).unwrap_or_default(),
                    },)*
                })
            }
        }
    };
}

theme_roles! {
    /// Ordinary text (and the background of the whole screen when it sets one).
    text,
    /// Secondary text: hints, units, empty values.
    muted,
    border,
    /// The border of the pane that has focus.
    border_focus,
    title,
    tab,
    tab_active,
    /// Table headers and section headings.
    header,
    /// The selected row.
    selected,
    /// The status bar.
    status,
    /// The READ-ONLY badge: must be unmistakable in every theme.
    read_only,
    /// The badge when fixes are enabled.
    read_write,
    /// Informational messages on the message line.
    message,
    /// Error messages on the message line.
    error,
    /// Healthy states (connected, running).
    ok,
    /// States worth a look (connecting, stale).
    warn,
    /// Failing states (unreachable, host key refused).
    bad,
    critical,
    high,
    medium,
    low,
    info,
    /// Waived findings.
    waived,
    /// The mark of a finding with a one-key fix.
    fix_mark,
    /// The fix mark and fix key when fixes are disabled (read-only).
    fix_disabled,
    sparkline,
    /// Text being typed (filter, command, confirmation).
    input,
    /// Dialog and popup backgrounds.
    dialog,
    /// Key names in help and hints.
    key,
    /// The environment badge (`[console] environment`), and the one for production (any
    /// name containing "prod"): must be unmistakable in every theme.
    env,
    env_prod,
    /// Borders while an environment is set, and while it is production.
    frame_env,
    frame_prod,
}

impl Theme {
    /// The style for a severity.
    pub fn severity(&self, s: crate::posture::Severity) -> Style {
        use crate::posture::Severity;
        match s {
            Severity::Critical => self.critical,
            Severity::High => self.high,
            Severity::Medium => self.medium,
            Severity::Low => self.low,
            Severity::Info => self.info,
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
struct ThemeFile {
    #[serde(default)]
    description: String,
    #[serde(default)]
    styles: StylesSpec,
}

/// 1-based line of byte offset `pos` in `text`.
pub(crate) fn line_of(text: &str, pos: usize) -> usize {
    text.get(..pos.min(text.len()))
        .map_or(1, |t| t.bytes().filter(|b| *b == b'\n').count() + 1)
}

fn raw_style(s: &StyleSpec, file: &str, text: &str) -> Result<RawStyle, ThemeError> {
    let color = |c: &Option<toml::Spanned<String>>| -> Result<Option<Color>, ThemeError> {
        match c {
            None => Ok(None),
            Some(sp) => {
                parse_color(sp.get_ref())
                    .map(Some)
                    .map_err(|message| ThemeError::Invalid {
                        file: file.to_string(),
                        line: line_of(text, sp.span().start),
                        message,
                    })
            }
        }
    };
    let mut modifier = Modifier::empty();
    for (on, m) in [
        (s.bold, Modifier::BOLD),
        (s.dim, Modifier::DIM),
        (s.italic, Modifier::ITALIC),
        (s.underline, Modifier::UNDERLINED),
        (s.reversed, Modifier::REVERSED),
    ] {
        if on {
            modifier |= m;
        }
    }
    Ok(RawStyle {
        fg: color(&s.fg)?,
        bg: color(&s.bg)?,
        modifier,
    })
}

/// Parses a theme file's text. Roles it leaves out are taken from `base` (user themes only
/// name what they change); with no base they have no style.
pub fn parse_theme(
    name: &str,
    text: &str,
    file: &str,
    base: Option<&ThemeSpec>,
) -> Result<ThemeSpec, ThemeError> {
    let parsed: ThemeFile = toml::from_str(text).map_err(|e| ThemeError::Invalid {
        file: file.to_string(),
        line: e.span().map_or(1, |s| line_of(text, s.start)),
        message: e.message().to_string(),
    })?;
    ThemeSpec::from_styles(name, parsed.description, parsed.styles, base, file, text)
}

/// Parses a colour: `#rrggbb`, an ANSI name (`red`, `lightblue`, `darkgray`, `reset`...), or a
/// 256-colour index `0`..`255`.
pub fn parse_color(s: &str) -> Result<Color, String> {
    let t = s.trim().to_ascii_lowercase();
    if let Some(hex) = t.strip_prefix('#') {
        if hex.len() == 6 && hex.chars().all(|c| c.is_ascii_hexdigit()) {
            let v = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
            return Ok(Color::Rgb((v >> 16) as u8, (v >> 8) as u8, v as u8));
        }
        return Err(format!("{s:?} is not a colour: write #rrggbb"));
    }
    if let Ok(i) = t.parse::<u8>() {
        return Ok(Color::Indexed(i));
    }
    let c = match t.replace(['-', '_', ' '], "").as_str() {
        "reset" | "default" => Color::Reset,
        "black" => Color::Black,
        "red" => Color::Red,
        "green" => Color::Green,
        "yellow" => Color::Yellow,
        "blue" => Color::Blue,
        "magenta" => Color::Magenta,
        "cyan" => Color::Cyan,
        "gray" | "grey" => Color::Gray,
        "darkgray" | "darkgrey" => Color::DarkGray,
        "lightred" => Color::LightRed,
        "lightgreen" => Color::LightGreen,
        "lightyellow" => Color::LightYellow,
        "lightblue" => Color::LightBlue,
        "lightmagenta" => Color::LightMagenta,
        "lightcyan" => Color::LightCyan,
        "white" => Color::White,
        _ => {
            return Err(format!(
                "{s:?} is not a colour: write #rrggbb, a number 0-255, or an ANSI name \
                 (black, red, green, yellow, blue, magenta, cyan, gray, darkgray, light..., white, reset)"
            ));
        }
    };
    Ok(c)
}

/// The 16 ANSI colours as xterm shows them, for nearest-colour matching.
const ANSI16: [(Color, (u8, u8, u8)); 16] = [
    (Color::Black, (0, 0, 0)),
    (Color::Red, (205, 0, 0)),
    (Color::Green, (0, 205, 0)),
    (Color::Yellow, (205, 205, 0)),
    (Color::Blue, (0, 0, 238)),
    (Color::Magenta, (205, 0, 205)),
    (Color::Cyan, (0, 205, 205)),
    (Color::Gray, (229, 229, 229)),
    (Color::DarkGray, (127, 127, 127)),
    (Color::LightRed, (255, 0, 0)),
    (Color::LightGreen, (0, 255, 0)),
    (Color::LightYellow, (255, 255, 0)),
    (Color::LightBlue, (92, 92, 255)),
    (Color::LightMagenta, (255, 0, 255)),
    (Color::LightCyan, (0, 255, 255)),
    (Color::White, (255, 255, 255)),
];

const CUBE: [u8; 6] = [0, 95, 135, 175, 215, 255];

fn dist(a: (u8, u8, u8), b: (u8, u8, u8)) -> u32 {
    let d = |x: u8, y: u8| (i32::from(x) - i32::from(y)).unsigned_abs();
    // Weighted: the eye is most sensitive to green, least to blue.
    2 * d(a.0, b.0).pow(2) + 4 * d(a.1, b.1).pow(2) + 3 * d(a.2, b.2).pow(2)
}

/// The RGB value of a 256-palette index.
fn indexed_rgb(i: u8) -> (u8, u8, u8) {
    match i {
        0..=15 => ANSI16[usize::from(i)].1,
        16..=231 => {
            let n = i - 16;
            (
                CUBE[usize::from(n / 36)],
                CUBE[usize::from((n / 6) % 6)],
                CUBE[usize::from(n % 6)],
            )
        }
        _ => {
            let g = 8 + 10 * (i - 232);
            (g, g, g)
        }
    }
}

/// Nearest 256-palette index (cube or grey ramp, never the terminal-defined first 16).
pub fn rgb_to_256(rgb: (u8, u8, u8)) -> u8 {
    (16u8..=255)
        .min_by_key(|i| dist(indexed_rgb(*i), rgb))
        .unwrap_or(16)
}

/// Nearest of the 16 ANSI colours.
pub fn rgb_to_16(rgb: (u8, u8, u8)) -> Color {
    ANSI16
        .iter()
        .min_by_key(|(_, c)| dist(*c, rgb))
        .map_or(Color::Reset, |(c, _)| *c)
}

/// A colour as a terminal of `depth` can show it.
pub fn degrade(c: Color, depth: ColorDepth) -> Color {
    match (c, depth) {
        (_, ColorDepth::None) => Color::Reset,
        (Color::Rgb(r, g, b), ColorDepth::Ansi256) => Color::Indexed(rgb_to_256((r, g, b))),
        (Color::Rgb(r, g, b), ColorDepth::Ansi16) => rgb_to_16((r, g, b)),
        (Color::Indexed(i), ColorDepth::Ansi16) => {
            if i < 16 {
                ANSI16[usize::from(i)].0
            } else {
                rgb_to_16(indexed_rgb(i))
            }
        }
        (c, _) => c,
    }
}

/// Every theme that can be chosen: the shipped ones, then the user's (which may replace a
/// shipped one of the same name, and inherit the roles they leave out from `default`).
#[derive(Debug, Clone)]
pub struct ThemeCatalog {
    specs: BTreeMap<String, ThemeSpec>,
}

impl ThemeCatalog {
    /// The shipped themes only.
    pub fn builtin() -> Result<ThemeCatalog, ThemeError> {
        let mut specs = BTreeMap::new();
        let mut base: Option<ThemeSpec> = None;
        for (name, text) in BUILTIN {
            let spec = parse_theme(name, text, &format!("themes/{name}.toml"), base.as_ref())?;
            if *name == "default" {
                base = Some(spec.clone());
            }
            specs.insert((*name).to_string(), spec);
        }
        Ok(ThemeCatalog { specs })
    }

    /// The shipped themes plus every `*.toml` in `dir` (usually `<config dir>/themes`). A
    /// missing directory is not an error; an unreadable or invalid file is.
    pub fn load(dir: &Path) -> Result<ThemeCatalog, ThemeError> {
        let mut cat = ThemeCatalog::builtin()?;
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(cat),
            Err(e) => {
                return Err(ThemeError::Read {
                    path: dir.to_path_buf(),
                    message: e.to_string(),
                });
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "toml"))
            .collect();
        files.sort();
        for path in files {
            let Some(name) = path.file_stem().and_then(|s| s.to_str()) else {
                continue;
            };
            let text = std::fs::read_to_string(&path).map_err(|e| ThemeError::Read {
                path: path.clone(),
                message: e.to_string(),
            })?;
            cat.add(name, &text, &path.display().to_string())?;
        }
        Ok(cat)
    }

    /// Adds (or replaces) a theme from its text; roles it leaves out come from `default`.
    pub fn add(&mut self, name: &str, text: &str, file: &str) -> Result<(), ThemeError> {
        let spec = parse_theme(name, text, file, self.specs.get("default"))?;
        self.specs.insert(name.to_string(), spec);
        Ok(())
    }

    pub fn names(&self) -> Vec<String> {
        self.specs.keys().cloned().collect()
    }

    /// The theme `name`, resolved for `depth`.
    pub fn theme(&self, name: &str, depth: ColorDepth) -> Result<Theme, ThemeError> {
        self.specs
            .get(name)
            .map(|s| s.resolve(depth))
            .ok_or_else(|| ThemeError::Unknown {
                name: name.to_string(),
                available: self.names().join(", "),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_follows_the_environment() {
        use ColorDepth as D;
        let d = ColorDepth::detect;
        assert_eq!(d(Some("1"), Some("truecolor"), None), D::None);
        assert_eq!(d(Some(""), Some("truecolor"), Some("xterm")), D::TrueColor);
        assert_eq!(d(None, Some("24bit"), Some("screen")), D::TrueColor);
        assert_eq!(d(None, None, Some("tmux-256color")), D::Ansi256);
        assert_eq!(d(None, None, Some("xterm-256color")), D::Ansi256);
        assert_eq!(d(None, None, Some("screen")), D::Ansi16);
        assert_eq!(d(None, None, Some("dumb")), D::None);
    }

    #[test]
    fn colours_parse_and_degrade() {
        assert_eq!(parse_color("#ff0000"), Ok(Color::Rgb(255, 0, 0)));
        assert_eq!(parse_color("LightBlue"), Ok(Color::LightBlue));
        assert_eq!(parse_color("dark-gray"), Ok(Color::DarkGray));
        assert_eq!(parse_color("208"), Ok(Color::Indexed(208)));
        assert!(parse_color("#ff00").is_err());
        assert!(parse_color("pinkish").is_err());
        assert_eq!(
            degrade(Color::Rgb(255, 0, 0), ColorDepth::Ansi256),
            Color::Indexed(196)
        );
        assert_eq!(
            degrade(Color::Rgb(250, 10, 10), ColorDepth::Ansi16),
            Color::LightRed
        );
        assert_eq!(
            degrade(Color::Rgb(18, 18, 18), ColorDepth::Ansi256),
            Color::Indexed(233)
        );
        assert_eq!(
            degrade(Color::Indexed(196), ColorDepth::Ansi16),
            Color::LightRed
        );
        assert_eq!(
            degrade(Color::Rgb(1, 2, 3), ColorDepth::TrueColor),
            Color::Rgb(1, 2, 3)
        );
        assert_eq!(degrade(Color::Red, ColorDepth::None), Color::Reset);
    }

    #[test]
    fn every_shipped_theme_parses_and_sets_every_role() {
        let cat = ThemeCatalog::builtin().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cat.names(), ["default", "high-contrast", "light", "mono"]);
        for name in cat.names() {
            let t = cat.theme(&name, ColorDepth::TrueColor).unwrap();
            // The badge must stand out in every theme, colour or not.
            assert_ne!(t.read_only, Style::default(), "{name}");
            assert_ne!(t.selected, Style::default(), "{name}");
            let none = cat.theme(&name, ColorDepth::None).unwrap();
            assert!(
                none.read_only.add_modifier.contains(Modifier::REVERSED)
                    || none.read_only.add_modifier.contains(Modifier::BOLD),
                "{name}"
            );
            assert!(none.read_only.fg.is_none_or(|c| c == Color::Reset));
        }
    }

    #[test]
    fn no_color_keeps_selection_visible() {
        let cat = ThemeCatalog::builtin().unwrap();
        let t = cat.theme("default", ColorDepth::None).unwrap();
        assert!(t.selected.add_modifier.contains(Modifier::REVERSED));
        assert_eq!(t.critical.fg, None);
    }

    #[test]
    fn user_theme_errors_name_the_line() {
        let mut cat = ThemeCatalog::builtin().unwrap();
        let text = "description = \"mine\"\n[styles]\ncritical = { fg = \"#ff00ff\" }\nhigh = { fg = \"pinkish\" }\n";
        let e = cat.add("mine", text, "mine.toml").unwrap_err();
        assert!(matches!(&e, ThemeError::Invalid { line: 4, .. }), "{e:?}");
        assert!(e.to_string().starts_with("mine.toml:4: "), "{e}");
        let e = cat
            .add("mine", "[styles]\nbogus = {}\n", "mine.toml")
            .unwrap_err();
        assert!(matches!(&e, ThemeError::Invalid { line: 2, .. }), "{e:?}");
        // Roles left out are inherited from the default theme.
        cat.add("mine", "[styles]\ncritical = { fg = \"#ff00ff\" }\n", "m")
            .unwrap();
        let mine = cat.theme("mine", ColorDepth::TrueColor).unwrap();
        let def = cat.theme("default", ColorDepth::TrueColor).unwrap();
        assert_eq!(mine.critical.fg, Some(Color::Rgb(255, 0, 255)));
        assert_eq!(mine.high, def.high);
        assert!(cat.theme("nope", ColorDepth::Ansi16).is_err());
    }
}
