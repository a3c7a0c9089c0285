//! Time-to-first-failure statistics for `csdci sweep`.
//!
//! Each sweep run observes the seconds of workload until its first failure
//! (a crash finding) or until a clean end, which is a right-censored
//! observation. This module turns those observations into:
//!
//! - a Kaplan–Meier survival curve with a Greenwood/log(-log) confidence band
//!   ([`kaplan_meier`]);
//! - a failure rate per guest-second with an exact (Garwood) Poisson interval
//!   ([`poisson_rate`]);
//! - the expected wall time to a first failure once per-run boot overhead is
//!   counted, both under a constant-rate model ([`expected_wall_s`]) and
//!   nonparametrically from the curve ([`expected_wall_km`]).
//!
//! Everything here is pure and total: NaN, empty input and zero exposure give
//! documented values, never a panic.

use serde::Serialize;
use statrs::distribution::{ChiSquared, ContinuousCDF, Normal};

/// Confidence level used when a caller passes NaN.
const DEFAULT_LEVEL: f64 = 0.95;

/// One run's outcome: workload seconds to the first failure, or to a clean end.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Obs {
    /// Seconds of workload observed (to the failure, or to the clean end).
    pub time_s: f64,
    /// True when the run ended in a failure; false when it was censored.
    pub failed: bool,
}

/// One step of a Kaplan–Meier curve.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KmPoint {
    /// Time (seconds of workload) at which the curve takes this value.
    pub t: f64,
    /// Estimated fraction of runs still clean from `t` on.
    pub survival: f64,
    /// Lower confidence bound on `survival`.
    pub lower: f64,
    /// Upper confidence bound on `survival`.
    pub upper: f64,
    /// Runs still under observation just before `t`.
    pub at_risk: usize,
}

/// A Kaplan–Meier (product-limit) survival curve.
///
/// `points` starts with `t = 0`, survival 1, then holds one point per distinct
/// failure time in increasing order; the curve is a right-continuous step
/// function through them.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct KaplanMeier {
    /// The steps of the curve, in increasing `t`.
    pub points: Vec<KmPoint>,
}

/// A failure rate per second with its exact Poisson confidence interval.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Rate {
    /// Number of failures observed.
    pub failures: u64,
    /// Total seconds of workload observed.
    pub exposure_s: f64,
    /// Point estimate, failures per second.
    pub per_s: f64,
    /// Lower confidence bound, failures per second.
    pub lower: f64,
    /// Upper confidence bound, failures per second (infinite without exposure).
    pub upper: f64,
}

/// Normalises a confidence level: NaN becomes 0.95, others are clamped to [0, 1].
fn clean_level(level: f64) -> f64 {
    if level.is_nan() {
        DEFAULT_LEVEL
    } else {
        level.clamp(0.0, 1.0)
    }
}

/// Two-sided standard-normal critical value for `level` (infinite at level 1).
fn z_value(level: f64) -> f64 {
    let p = (1.0 + clean_level(level)) / 2.0;
    if p >= 1.0 {
        return f64::INFINITY;
    }
    match Normal::new(0.0, 1.0) {
        Ok(n) => n.inverse_cdf(p),
        Err(_) => f64::INFINITY,
    }
}

/// Degrees of freedom above which [`chi2_quantile`] uses the Wilson–Hilferty
/// approximation: statrs' incomplete gamma loses accuracy (NaN from about
/// 2·10⁷) and slows down without bound there, while the approximation's
/// relative error is below 10⁻⁶ at this size.
const WILSON_HILFERTY_DOF: f64 = 2.0e5;

/// Quantile of the chi-squared distribution with `dof` degrees of freedom.
///
/// Probabilities at or below 0 give 0, at or above 1 give infinity, and an
/// invalid `dof` gives NaN.
fn chi2_quantile(p: f64, dof: f64) -> f64 {
    if p.is_nan() || dof.is_nan() || dof <= 0.0 {
        return f64::NAN;
    }
    if p <= 0.0 {
        return 0.0;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    if dof > WILSON_HILFERTY_DOF {
        return wilson_hilferty(p, dof);
    }
    match ChiSquared::new(dof) {
        Ok(c) => c.inverse_cdf(p),
        Err(_) => f64::NAN,
    }
}

/// Wilson–Hilferty approximation of the chi-squared quantile, for large `dof`.
fn wilson_hilferty(p: f64, dof: f64) -> f64 {
    let z = match Normal::new(0.0, 1.0) {
        Ok(n) => n.inverse_cdf(p),
        Err(_) => return f64::NAN,
    };
    let c = 2.0 / (9.0 * dof);
    dof * (1.0 - c + z * c.sqrt()).powi(3)
}

/// Observations usable for estimation: finite, non-negative times, sorted by
/// time with failures before censorings at equal times.
fn usable_sorted(obs: &[Obs]) -> Vec<Obs> {
    let mut v: Vec<Obs> = obs
        .iter()
        .copied()
        .filter(|o| o.time_s.is_finite() && o.time_s >= 0.0)
        .collect();
    v.sort_by(|a, b| a.time_s.total_cmp(&b.time_s).then(b.failed.cmp(&a.failed)));
    v
}

/// Log(-log) confidence band around `s`, given the Greenwood sum
/// Σ d/(n(n-d)) (the variance of log S).
///
/// Where the transform is undefined (S = 0 or S = 1) the bounds are `s` itself.
fn loglog_band(s: f64, greenwood: f64, z: f64) -> (f64, f64) {
    if s <= 0.0 || s >= 1.0 || !greenwood.is_finite() {
        return (s, s);
    }
    let se = greenwood.sqrt() / s.ln().abs();
    let lower = s.powf((z * se).exp());
    let upper = s.powf((-z * se).exp());
    (lower.clamp(0.0, 1.0), upper.clamp(0.0, 1.0))
}

/// Kaplan–Meier product-limit estimate of the fraction of runs still clean.
///
/// Observations with a NaN, infinite or negative time are ignored. The curve
/// has one point at `t = 0` (survival 1) and one per distinct failure time; at
/// tied times, failures count as happening before censorings. `level` (e.g.
/// 0.95) sets the pointwise Greenwood band on the log(-log) scale; NaN means
/// 0.95.
pub fn kaplan_meier(obs: &[Obs], level: f64) -> KaplanMeier {
    let sorted = usable_sorted(obs);
    let z = z_value(level);
    let mut points = vec![KmPoint {
        t: 0.0,
        survival: 1.0,
        lower: 1.0,
        upper: 1.0,
        at_risk: sorted.len(),
    }];
    let (mut s, mut greenwood) = (1.0_f64, 0.0_f64);
    let mut i = 0;
    while i < sorted.len() {
        let t = sorted[i].time_s;
        let at_risk = sorted.len() - i;
        let same = sorted[i..].iter().take_while(|o| o.time_s == t).count();
        let deaths = sorted[i..i + same].iter().filter(|o| o.failed).count();
        i += same;
        if deaths == 0 {
            continue;
        }
        let (n, d) = (at_risk as f64, deaths as f64);
        s *= 1.0 - d / n;
        greenwood += if deaths < at_risk {
            d / (n * (n - d))
        } else {
            f64::INFINITY
        };
        let (lower, upper) = loglog_band(s, greenwood, z);
        points.push(KmPoint {
            t,
            survival: s,
            lower,
            upper,
            at_risk,
        });
    }
    KaplanMeier { points }
}

impl KaplanMeier {
    /// Estimated survival at `t`: the value of the last step at or before `t`.
    ///
    /// 1 before the first step, for NaN `t`, and for a curve without points.
    pub fn survival_at(&self, t: f64) -> f64 {
        if t.is_nan() {
            return 1.0;
        }
        self.points
            .iter()
            .take_while(|p| p.t <= t)
            .last()
            .map_or(1.0, |p| p.survival)
    }

    /// Median time to failure: the first time at which survival is at most ½.
    ///
    /// `None` when the curve never gets that low.
    pub fn median(&self) -> Option<f64> {
        self.points.iter().find(|p| p.survival <= 0.5).map(|p| p.t)
    }

    /// Restricted mean survival time: the area under the step curve on [0, tau].
    ///
    /// 0 for a NaN or non-positive `tau`; a curve without points counts as
    /// survival 1 throughout, so its area is `tau`.
    pub fn rmst(&self, tau: f64) -> f64 {
        if tau.is_nan() || tau <= 0.0 {
            return 0.0;
        }
        let mut area = 0.0;
        let mut t_prev = 0.0;
        let mut s_prev = 1.0;
        for p in self.points.iter().take_while(|p| p.t < tau) {
            area += segment_area(s_prev, p.t - t_prev);
            t_prev = p.t.max(t_prev);
            s_prev = p.survival;
        }
        area + segment_area(s_prev, tau - t_prev)
    }
}

/// Area of one flat step of height `s` and width `w`, treating 0 × ∞ as 0.
fn segment_area(s: f64, w: f64) -> f64 {
    if s <= 0.0 || w <= 0.0 { 0.0 } else { s * w }
}

/// Failure rate per second with an exact (Garwood) two-sided interval.
///
/// lower = χ²(α/2; 2k) / 2E (0 when k = 0), upper = χ²(1-α/2; 2k+2) / 2E,
/// with α = 1 - `level` (NaN `level` means 0.95). Exposure that is zero,
/// negative or NaN gives `per_s` 0, `lower` 0 and an infinite `upper`.
pub fn poisson_rate(failures: u64, exposure_s: f64, level: f64) -> Rate {
    let k = failures as f64;
    if exposure_s.is_nan() || exposure_s <= 0.0 {
        return Rate {
            failures,
            exposure_s,
            per_s: 0.0,
            lower: 0.0,
            upper: f64::INFINITY,
        };
    }
    let alpha = 1.0 - clean_level(level);
    let two_e = 2.0 * exposure_s;
    let lower = if failures == 0 {
        0.0
    } else {
        chi2_quantile(alpha / 2.0, 2.0 * k) / two_e
    };
    let upper = chi2_quantile(1.0 - alpha / 2.0, 2.0 * k + 2.0) / two_e;
    Rate {
        failures,
        exposure_s,
        per_s: k / exposure_s,
        lower,
        upper,
    }
}

/// Expected wall time to a first failure when failures are a Poisson process.
///
/// Runs last at most `run_s` seconds of workload and each costs `overhead_s`
/// more (boot, shutdown). With p = 1 - exp(-λ·run_s) a run finds a failure;
/// one run costs overhead + E[min(T, run_s)] = overhead + p/λ and 1/p runs are
/// needed on average, so the total is `overhead_s / p + 1/λ`.
///
/// Infinite when λ is not a positive finite number, when `run_s` is not
/// positive or NaN, or when `overhead_s` is NaN or infinite; a negative
/// overhead counts as 0.
pub fn expected_wall_s(rate_per_s: f64, overhead_s: f64, run_s: f64) -> f64 {
    let valid_rate = rate_per_s.is_finite() && rate_per_s > 0.0;
    let valid_run = !run_s.is_nan() && run_s > 0.0;
    if !valid_rate || !valid_run || !overhead_s.is_finite() {
        return f64::INFINITY;
    }
    let p = -(-rate_per_s * run_s).exp_m1();
    if p <= 0.0 {
        return f64::INFINITY;
    }
    overhead_s.max(0.0) / p + 1.0 / rate_per_s
}

/// Nonparametric expected wall time to a first failure, from a survival curve.
///
/// Each run costs `overhead_s` plus E[min(T, run_s)] = rmst(run_s), and finds a
/// failure with probability 1 - S(run_s): the total is
/// (overhead + rmst(run_s)) / (1 - S(run_s)). `None` when S(run_s) is 1 (no
/// failure seen within a run's length), when `run_s` is not positive, or when
/// an input is NaN or the result is not finite; a negative overhead counts as 0.
pub fn expected_wall_km(km: &KaplanMeier, overhead_s: f64, run_s: f64) -> Option<f64> {
    if run_s.is_nan() || run_s <= 0.0 || overhead_s.is_nan() {
        return None;
    }
    let p = 1.0 - km.survival_at(run_s);
    if p.is_nan() || p <= 0.0 {
        return None;
    }
    let wall = (overhead_s.max(0.0) + km.rmst(run_s)) / p;
    wall.is_finite().then_some(wall)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    fn obs(t: f64, failed: bool) -> Obs {
        Obs { time_s: t, failed }
    }

    /// Freireich et al. (1963) 6-MP arm, the classic Kaplan–Meier textbook
    /// example (Kleinbaum & Klein; R `survfit(..., conf.type = "log-log")`).
    fn six_mp() -> Vec<Obs> {
        let fails = [6.0, 6.0, 6.0, 7.0, 10.0, 13.0, 16.0, 22.0, 23.0];
        let cens = [
            6.0, 9.0, 10.0, 11.0, 17.0, 19.0, 20.0, 25.0, 32.0, 32.0, 34.0, 35.0,
        ];
        let mut v: Vec<Obs> = cens.iter().map(|&t| obs(t, false)).collect();
        v.extend(fails.iter().map(|&t| obs(t, true)));
        v
    }

    #[test]
    fn km_matches_textbook_six_mp() {
        let km = kaplan_meier(&six_mp(), 0.95);
        // (t, at risk, S, lower, upper) from the textbook / R output.
        let want = [
            (0.0, 21, 1.0, 1.0, 1.0),
            (6.0, 21, 0.857, 0.620, 0.952),
            (7.0, 17, 0.807, 0.563, 0.923),
            (10.0, 15, 0.753, 0.503, 0.889),
            (13.0, 12, 0.690, 0.432, 0.849),
            (16.0, 11, 0.627, 0.368, 0.805),
            (22.0, 7, 0.538, 0.268, 0.747),
            (23.0, 6, 0.448, 0.188, 0.680),
        ];
        assert_eq!(km.points.len(), want.len());
        for (p, &(t, n, s, lo, hi)) in km.points.iter().zip(want.iter()) {
            assert_eq!(p.t, t);
            assert_eq!(p.at_risk, n, "at risk at {t}");
            assert!(close(p.survival, s, 5e-4), "S({t}) = {}", p.survival);
            assert!(close(p.lower, lo, 5e-4), "lower({t}) = {}", p.lower);
            assert!(close(p.upper, hi, 5e-4), "upper({t}) = {}", p.upper);
        }
        // Exact product: 18/21 · 16/17 · 14/15 · 11/12 · 10/11 · 6/7 · 5/6.
        let exact = 18.0 / 21.0 * 16.0 / 17.0 * 14.0 / 15.0 * 11.0 / 12.0 * 10.0 / 11.0 * 6.0 / 7.0
            * 5.0
            / 6.0;
        assert!(close(km.points[7].survival, exact, 1e-12));
    }

    #[test]
    fn km_survival_at_median_and_rmst() {
        let km = kaplan_meier(&six_mp(), 0.95);
        assert_eq!(km.survival_at(-1.0), 1.0);
        assert_eq!(km.survival_at(5.999), 1.0);
        assert!(close(km.survival_at(6.0), 18.0 / 21.0, 1e-12));
        assert!(close(km.survival_at(8.5), 18.0 / 21.0 * 16.0 / 17.0, 1e-12));
        assert!(close(km.survival_at(1e9), km.points[7].survival, 1e-12));
        assert_eq!(km.median(), Some(23.0));
        // Hand-computed area: 6·1 + 1·S6 + 3·S7 + 3·S10 + 3·S13 + 6·S16 + 1·S22.
        let s: Vec<f64> = km.points.iter().map(|p| p.survival).collect();
        let area = 6.0 + s[1] + 3.0 * s[2] + 3.0 * s[3] + 3.0 * s[4] + 6.0 * s[5] + s[6];
        assert!(close(km.rmst(23.0), area, 1e-12));
        assert!(close(km.rmst(23.0), 17.909, 1e-3));
        assert!(close(km.rmst(3.0), 3.0, 1e-12));
        assert!(close(km.rmst(6.5), 6.0 + 0.5 * s[1], 1e-12));
        assert_eq!(km.rmst(0.0), 0.0);
        assert_eq!(km.rmst(f64::NAN), 0.0);
    }

    #[test]
    fn km_ties_failures_before_censorings() {
        // At t=2: one failure and one censoring, 3 at risk → S = 2/3.
        // At t=3: the one left fails → S = 0, band collapses to 0.
        let km = kaplan_meier(&[obs(2.0, false), obs(2.0, true), obs(3.0, true)], 0.95);
        assert_eq!(km.points.len(), 3);
        assert_eq!(km.points[1].at_risk, 3);
        assert!(close(km.points[1].survival, 2.0 / 3.0, 1e-12));
        assert_eq!(km.points[2].at_risk, 1);
        assert_eq!(km.points[2].survival, 0.0);
        assert_eq!((km.points[2].lower, km.points[2].upper), (0.0, 0.0));
        assert_eq!(km.median(), Some(3.0));
        assert!(close(km.rmst(10.0), 2.0 + 2.0 / 3.0, 1e-12));
    }

    #[test]
    fn km_degenerate_inputs() {
        let empty = kaplan_meier(&[], 0.95);
        assert_eq!(empty.points.len(), 1);
        assert_eq!(empty.points[0].survival, 1.0);
        assert_eq!(empty.median(), None);
        assert_eq!(empty.rmst(5.0), 5.0);

        let junk = [
            obs(f64::NAN, true),
            obs(-1.0, true),
            obs(f64::INFINITY, true),
        ];
        let km = kaplan_meier(&junk, f64::NAN);
        assert_eq!(km.points.len(), 1);
        assert_eq!(km.points[0].at_risk, 0);

        let censored = kaplan_meier(&[obs(5.0, false), obs(7.0, false)], 0.95);
        assert_eq!(censored.points.len(), 1);
        assert_eq!(censored.survival_at(100.0), 1.0);
        assert_eq!(expected_wall_km(&censored, 10.0, 100.0), None);

        let none = KaplanMeier { points: vec![] };
        assert_eq!(none.survival_at(3.0), 1.0);
        assert_eq!(none.median(), None);
        assert_eq!(none.rmst(2.0), 2.0);
        assert_eq!(expected_wall_km(&none, 1.0, 2.0), None);

        for level in [0.0, 1.0, -3.0, 7.0, f64::NAN] {
            let km = kaplan_meier(&six_mp(), level);
            assert!(
                km.points
                    .iter()
                    .all(|p| p.lower <= p.survival && p.survival <= p.upper)
            );
        }
    }

    #[test]
    fn poisson_garwood_known_values() {
        let r0 = poisson_rate(0, 1.0, 0.95);
        assert_eq!((r0.per_s, r0.lower), (0.0, 0.0));
        assert!(close(r0.upper, 3.689, 1e-3), "upper {}", r0.upper);

        let r1 = poisson_rate(1, 1.0, 0.95);
        assert!(close(r1.lower, 0.0253, 1e-4), "lower {}", r1.lower);
        assert!(close(r1.upper, 5.572, 1e-3), "upper {}", r1.upper);

        let r10 = poisson_rate(10, 1.0, 0.95);
        assert!(close(r10.lower, 4.795, 1e-3), "lower {}", r10.lower);
        assert!(close(r10.upper, 18.39, 1e-2), "upper {}", r10.upper);
        assert_eq!(r10.per_s, 10.0);

        // Scaling with exposure.
        let r = poisson_rate(10, 100.0, 0.95);
        assert!(close(r.lower * 100.0, r10.lower, 1e-9));
        assert!(close(r.upper * 100.0, r10.upper, 1e-9));
        assert_eq!(r.per_s, 0.1);
    }

    #[test]
    fn poisson_degenerate_inputs() {
        for e in [0.0, -5.0, f64::NAN] {
            let r = poisson_rate(3, e, 0.95);
            assert_eq!((r.per_s, r.lower, r.upper), (0.0, 0.0, f64::INFINITY));
        }
        let r = poisson_rate(3, 10.0, 1.0);
        assert_eq!((r.lower, r.upper), (0.0, f64::INFINITY));
        let r = poisson_rate(3, 10.0, f64::NAN);
        assert!(r.lower > 0.0 && r.upper.is_finite());
        // Large counts: ≈ 1 ± 1.96/√k around the estimate, and no hang or NaN.
        for k in [1_000_000_u64, 10_000_000, 1 << 40, u64::MAX] {
            let r = poisson_rate(k, k as f64, 0.95);
            let half = 1.96 / (k as f64).sqrt();
            assert!(close(r.lower, 1.0 - half, 1e-4), "{r:?}");
            assert!(close(r.upper, 1.0 + half, 1e-4), "{r:?}");
        }
    }

    #[test]
    fn expected_wall_closed_form() {
        // run_s → ∞: p = 1, so overhead + mean time.
        assert!(close(
            expected_wall_s(0.01, 30.0, f64::INFINITY),
            130.0,
            1e-9
        ));
        // λ = 1/100, run 100: p = 1 - 1/e.
        let p = 1.0 - (-1.0_f64).exp();
        assert!(close(
            expected_wall_s(0.01, 30.0, 100.0),
            30.0 / p + 100.0,
            1e-9
        ));
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(expected_wall_s(bad, 30.0, 100.0), f64::INFINITY);
        }
        assert_eq!(expected_wall_s(0.01, 30.0, 0.0), f64::INFINITY);
        assert_eq!(expected_wall_s(0.01, f64::NAN, 10.0), f64::INFINITY);
        assert!(close(
            expected_wall_s(0.01, -5.0, f64::INFINITY),
            100.0,
            1e-9
        ));
    }

    /// Simulates runs of at most `run_s` with exponential failure times.
    fn simulate_wall(rate: f64, overhead: f64, run_s: f64, trials: u32) -> f64 {
        let mut rng = ChaCha8Rng::seed_from_u64(0x5eed);
        let mut total = 0.0;
        for _ in 0..trials {
            loop {
                let u: f64 = rng.random();
                let t = -(1.0 - u).ln() / rate;
                if t < run_s {
                    total += overhead + t;
                    break;
                }
                total += overhead + run_s;
            }
        }
        total / f64::from(trials)
    }

    #[test]
    fn expected_wall_matches_monte_carlo() {
        for &(rate, overhead, run_s) in &[
            (0.01, 30.0, 100.0),
            (0.001, 60.0, 300.0),
            (0.05, 10.0, 20.0),
        ] {
            let want = expected_wall_s(rate, overhead, run_s);
            let got = simulate_wall(rate, overhead, run_s, 100_000);
            assert!(
                (got - want).abs() / want < 0.02,
                "λ={rate}: sim {got} vs {want}"
            );
        }
    }

    #[test]
    fn expected_wall_km_agrees_with_exponential() {
        // Many exponential runs censored at run_s: the KM version should be
        // near the constant-rate formula.
        let (rate, overhead, run_s) = (0.01, 30.0, 100.0);
        let mut rng = ChaCha8Rng::seed_from_u64(7);
        let sample: Vec<Obs> = (0..20_000)
            .map(|_| {
                let u: f64 = rng.random();
                let t = -(1.0 - u).ln() / rate;
                if t < run_s {
                    obs(t, true)
                } else {
                    obs(run_s, false)
                }
            })
            .collect();
        let km = kaplan_meier(&sample, 0.95);
        let got = expected_wall_km(&km, overhead, run_s);
        let want = expected_wall_s(rate, overhead, run_s);
        assert!(
            got.is_some_and(|g| (g - want).abs() / want < 0.02),
            "{got:?} vs {want}"
        );
        // Hand check on the textbook curve: (10 + rmst(23)) / (1 - S(23)).
        let km = kaplan_meier(&six_mp(), 0.95);
        let s23 = km.survival_at(23.0);
        let want = (10.0 + km.rmst(23.0)) / (1.0 - s23);
        assert_eq!(expected_wall_km(&km, 10.0, 23.0), Some(want));
        assert!(close(want, 27.909 / (1.0 - 0.448), 0.1));
        assert_eq!(expected_wall_km(&km, 10.0, 5.0), None);
        assert_eq!(expected_wall_km(&km, f64::NAN, 23.0), None);
        assert_eq!(
            expected_wall_km(&km, -4.0, 23.0),
            expected_wall_km(&km, 0.0, 23.0)
        );
    }
}
