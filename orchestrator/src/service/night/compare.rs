//! Comparing a night with the nights before it, per cell: which failures are
//! new (bisect them), which belong to a regression already open (attach the
//! night), and which open regressions this night shows clean (towards
//! "fixed"). Pure: the caller reads the store and acts on the decisions.

use crate::store::nights::NightCell;
use crate::store::regressions::Regression;

/// What to do about one cell's result.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// The night showed open regression `id` again.
    Attach { id: i64 },
    /// A regression not seen before: open it. `good` is where to bisect it
    /// from: the head of the last night the cell was clean (built, for a
    /// build failure), when that was the night before that tested the cell;
    /// `None` when it is not new (it failed since the cell was first tested,
    /// or the cell was already failing otherwise): opened, not bisected.
    Open {
        title: String,
        kind: &'static str,
        good: Option<String>,
        detail: Option<String>,
    },
}

/// The title a build failure is known by: the first compiler error without
/// its line and column (they move with every unrelated change above it).
pub fn build_title(error: &str) -> String {
    static PLACE: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"([^\s:]+\.[A-Za-z]+):\d+(?::\d+)?: ((?:fatal )?error: .*)")
            .expect("valid regex")
    });
    let lines = || error.lines().map(str::trim).filter(|l| !l.is_empty());
    let line = lines()
        .find(|l| l.contains("error:") || l.contains("Error "))
        .or_else(|| lines().next())
        .unwrap_or("unknown error");
    // `build failed: kernel/smp.c:123:45: error: x` → `kernel/smp.c: error: x`.
    let text = match PLACE.captures(line) {
        Some(c) => format!("{}: {}", &c[1], &c[2]),
        None => line.trim_start_matches("build failed: ").to_string(),
    };
    csdci_console::title::normalize(&format!("build error: {text}"))
}

/// The titles a cell showed, most runs first (ties: first seen).
fn titles(cell: &NightCell) -> Vec<String> {
    let mut t: Vec<(usize, &crate::store::nights::TitleCount)> =
        cell.titles.iter().enumerate().collect();
    t.sort_by(|a, b| b.1.runs.cmp(&a.1.runs).then(a.0.cmp(&b.0)));
    t.into_iter().map(|(_, c)| c.title.clone()).collect()
}

/// Decides what cell `cell` of tonight means. `prev` is the same cell on the
/// last night that tested it, with that night's head; `open` the branch's
/// open regressions.
pub fn decide(
    cell: &NightCell,
    prev: Option<(&str, &NightCell)>,
    open: &[Regression],
) -> Vec<Action> {
    let (shown, kind, detail): (Vec<String>, &'static str, Option<String>) =
        match cell.status.as_str() {
            "failed" => (titles(cell), "test", None),
            "build_failed" => {
                let err = cell.build_error.clone().unwrap_or_default();
                (vec![build_title(&err)], "build", Some(err))
            }
            _ => return Vec::new(),
        };
    let attached: Vec<Action> = open
        .iter()
        .filter(|r| shown.contains(&r.title))
        .map(|r| Action::Attach { id: r.id })
        .collect();
    if !attached.is_empty() {
        // Other titles of the same cell are the same regression showing
        // differently; they do not open another one.
        return attached;
    }
    let Some(title) = shown.into_iter().next() else {
        return Vec::new();
    };
    // New when the night before was clean (for a build break: when it built).
    let good = prev
        .filter(|(_, p)| match kind {
            "test" => p.status == "clean",
            _ => matches!(p.status.as_str(), "clean" | "failed"),
        })
        .map(|(head, _)| head.to_string());
    vec![Action::Open {
        title,
        kind,
        good,
        detail,
    }]
}

/// Whether tonight counts as a clean night for open regression `r`: its cell
/// was tested, built, and showed none of it, with at least the runs the
/// nights that showed it needed. `None`: tonight says nothing about it (the
/// cell was not tested, did not build, or ran too few runs).
pub fn clean_for(r: &Regression, cells: &[NightCell]) -> Option<bool> {
    let c = cells.iter().find(|c| c.cell == r.cell)?;
    match r.kind.as_str() {
        "build" => match c.status.as_str() {
            "build_failed" => {
                Some(c.build_error.as_deref().map(build_title) != Some(r.title.clone()))
            }
            "clean" | "failed" => Some(true),
            _ => None,
        },
        _ => {
            let seen = c.titles.iter().any(|t| t.title == r.title);
            match c.status.as_str() {
                _ if seen => Some(false),
                "clean" | "failed" if c.runs >= r.runs_seen.max(1) => Some(true),
                _ => None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::nights::TitleCount;

    fn cell(status: &str, titles: &[(&str, u32)]) -> NightCell {
        NightCell {
            night_id: 2,
            cell: "default".into(),
            spec: "{}".into(),
            status: status.into(),
            runs: 3,
            fails: titles.iter().map(|t| t.1).max().unwrap_or(0),
            infra: 0,
            titles: titles
                .iter()
                .map(|(t, n)| TitleCount {
                    title: t.to_string(),
                    runs: *n,
                })
                .collect(),
            run_ids: vec![],
            build_error: None,
            artifact_id: None,
        }
    }

    fn open(id: i64, title: &str, kind: &str) -> Regression {
        Regression::sample(id, title, kind)
    }

    #[test]
    fn a_new_failure_after_a_clean_night_is_bisected_from_the_clean_head() {
        let tonight = cell(
            "failed",
            &[("WARNING in foo", 1), ("BUG: soft lockup in bar", 2)],
        );
        let prev = cell("clean", &[]);
        let a = decide(&tonight, Some(("good1", &prev)), &[]);
        assert_eq!(
            a,
            vec![Action::Open {
                title: "BUG: soft lockup in bar".into(),
                kind: "test",
                good: Some("good1".into()),
                detail: None
            }]
        );
    }

    #[test]
    fn the_same_title_attaches_instead_of_bisecting_again() {
        let tonight = cell(
            "failed",
            &[("WARNING in foo", 1), ("BUG: soft lockup in bar", 2)],
        );
        let prev = cell("clean", &[]);
        let a = decide(
            &tonight,
            Some(("g", &prev)),
            &[open(7, "WARNING in foo", "test")],
        );
        assert_eq!(a, vec![Action::Attach { id: 7 }]);
    }

    #[test]
    fn failing_since_first_tested_is_opened_without_a_bisection() {
        let tonight = cell("failed", &[("BUG: x", 1)]);
        let a = decide(&tonight, None, &[]);
        assert!(matches!(&a[..], [Action::Open { good: None, .. }]));
        // Already failing otherwise the night before: not bisected either.
        let a = decide(
            &tonight,
            Some(("g", &cell("failed", &[("WARNING: y", 1)]))),
            &[],
        );
        assert!(matches!(&a[..], [Action::Open { good: None, .. }]), "{a:?}");
        // A clean cell decides nothing.
        assert!(decide(&cell("clean", &[]), None, &[]).is_empty());
    }

    #[test]
    fn build_breaks_have_stable_titles_and_are_bisected_from_the_last_build() {
        assert_eq!(
            build_title("build failed: kernel/smp.c:7:1: error: expected ';' before '}' token"),
            "build error: kernel/smp.c: error: expected ';' before '}' token"
        );
        assert_eq!(
            build_title(
                "  CC kernel/smp.o\nkernel/smp.c:123:45: error: expected ';' before '}' token\n"
            ),
            build_title("kernel/smp.c:130:2: error: expected ';' before '}' token")
        );
        let mut tonight = cell("build_failed", &[]);
        tonight.build_error = Some("kernel/smp.c:1:2: error: boom".into());
        let a = decide(
            &tonight,
            Some(("g", &cell("failed", &[("BUG: y", 1)]))),
            &[],
        );
        assert!(
            matches!(
                &a[..],
                [Action::Open {
                    kind: "build",
                    good: Some(_),
                    ..
                }]
            ),
            "{a:?}"
        );
    }

    #[test]
    fn clean_nights_need_as_many_runs_as_the_failure_did() {
        let r = open(1, "BUG: x", "test");
        assert_eq!(clean_for(&r, &[cell("clean", &[])]), Some(true));
        assert_eq!(
            clean_for(&r, &[cell("failed", &[("BUG: x", 1)])]),
            Some(false)
        );
        assert_eq!(
            clean_for(&r, &[cell("failed", &[("WARNING: other", 1)])]),
            Some(true)
        );
        let mut few = cell("clean", &[]);
        few.runs = 1;
        assert_eq!(clean_for(&r, &[few]), None);
        assert_eq!(clean_for(&r, &[cell("build_failed", &[])]), None);
        assert_eq!(clean_for(&r, &[]), None);
    }
}
