//! Which failures count: `any` crash finding, a `csd` (CSD-lock) finding, or a
//! finding whose title matches `title:REGEX`.

use csdci_console::{Analysis, FindingKind};
use regex::Regex;

/// The bisection predicate.
#[derive(Debug, Clone)]
pub enum Predicate {
    /// Any finding.
    Any,
    /// A CSD-lock finding.
    Csd,
    /// A finding whose title matches.
    Title(Regex),
}

impl Predicate {
    /// Parses `any`, `csd` or `title:REGEX`.
    pub fn parse(s: &str) -> Result<Self, String> {
        match s {
            "any" => Ok(Predicate::Any),
            "csd" => Ok(Predicate::Csd),
            _ => match s.strip_prefix("title:") {
                Some(re) if !re.is_empty() => Regex::new(re).map(Predicate::Title).map_err(|e| {
                    let e = e.to_string();
                    let why = e.lines().last().unwrap_or("invalid").trim();
                    format!("--predicate title:{re}: bad regex: {why}")
                }),
                _ => Err(format!(
                    "--predicate '{s}': expected any, csd or title:REGEX"
                )),
            },
        }
    }

    /// True when the analysis shows the failure being bisected.
    pub fn matches(&self, a: &Analysis) -> bool {
        a.findings
            .iter()
            .any(|f| self.matches_title(&f.title, f.kind))
            || matches!(self, Predicate::Title(re) if a.title.as_deref().is_some_and(|t| re.is_match(t)))
    }

    /// True when one finding (its title and kind) is the failure asked for.
    pub fn matches_title(&self, title: &str, kind: FindingKind) -> bool {
        match self {
            Predicate::Any => true,
            Predicate::Csd => kind == FindingKind::CsdLock,
            Predicate::Title(re) => re.is_match(title),
        }
    }
}

impl std::fmt::Display for Predicate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Predicate::Any => f.write_str("any"),
            Predicate::Csd => f.write_str("csd"),
            Predicate::Title(re) => write!(f, "title:{}", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_refuses() {
        assert!(matches!(Predicate::parse("any"), Ok(Predicate::Any)));
        assert!(matches!(Predicate::parse("csd"), Ok(Predicate::Csd)));
        assert_eq!(
            Predicate::parse("title:soft lockup").unwrap().to_string(),
            "title:soft lockup"
        );
        assert!(
            Predicate::parse("title:(")
                .unwrap_err()
                .contains("bad regex")
        );
        assert!(Predicate::parse("crash").is_err());
    }
}
