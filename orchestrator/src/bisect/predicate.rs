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
        match self {
            Predicate::Any => !a.findings.is_empty(),
            Predicate::Csd => a.findings.iter().any(|f| f.kind == FindingKind::CsdLock),
            Predicate::Title(re) => {
                a.findings.iter().any(|f| re.is_match(&f.title))
                    || a.title.as_deref().is_some_and(|t| re.is_match(t))
            }
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
