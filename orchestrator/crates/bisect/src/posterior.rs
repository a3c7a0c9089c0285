//! The joint posterior over (culprit position, per-run failure probability of a bad
//! commit), and the expected information gain of one more run at each candidate.

/// `x ln x`, with `0 ln 0 = 0`.
fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Joint weights `w[i * k + g]`: culprit at position `i`, column `g` = one pair
/// (failure probability of a bad commit, false-failure rate of a good one).
/// Kept normalised to sum 1.
#[derive(Debug, Clone)]
pub(crate) struct Joint {
    n: usize,
    /// Per column: failure probability of a bad commit.
    p: Vec<f64>,
    /// Per column: false-failure rate of a good commit.
    eps: Vec<f64>,
    w: Vec<f64>,
}

impl Joint {
    /// Uniform prior over positions; over columns (every pair of a `p_grid` and a
    /// `eps_grid` value) proportional to `p^-prior_exp` (0: uniform).
    pub(crate) fn new(n: usize, p_grid: &[f64], eps_grid: &[f64], prior_exp: f64) -> Self {
        let mut p = Vec::new();
        let mut eps = Vec::new();
        for &e in eps_grid {
            for &q in p_grid {
                p.push(q);
                eps.push(e);
            }
        }
        let row: Vec<f64> = p.iter().map(|&q| q.powf(-prior_exp)).collect();
        let mut w = Vec::with_capacity(n * row.len());
        for _ in 0..n {
            w.extend_from_slice(&row);
        }
        let mut j = Joint { n, p, eps, w };
        j.normalise();
        j
    }

    fn k(&self) -> usize {
        self.p.len()
    }

    /// Multiplies in the likelihood of one run at `index` that failed (`fail`) or
    /// passed, `times` times over.
    pub(crate) fn run(&mut self, index: usize, fail: bool, times: u32) {
        let k = self.k();
        let t = times as i32;
        let lik = |x: f64| if fail { x } else { 1.0 - x }.powi(t);
        let bad: Vec<f64> = self.p.iter().map(|&x| lik(x)).collect();
        let good: Vec<f64> = self.eps.iter().map(|&x| lik(x)).collect();
        for i in 0..self.n {
            let row = &mut self.w[i * k..(i + 1) * k];
            let l = if i <= index { &bad } else { &good };
            for (x, l) in row.iter_mut().zip(l) {
                *x *= l;
            }
        }
        self.normalise();
    }

    /// Sets the weight of positions in `lo..=hi` to zero (they are impossible).
    pub(crate) fn exclude(&mut self, lo: usize, hi: usize) {
        let k = self.k();
        for x in &mut self.w[lo * k..(hi + 1).min(self.n) * k] {
            *x = 0.0;
        }
        self.normalise();
    }

    fn normalise(&mut self) {
        let s: f64 = self.w.iter().sum();
        if s > 0.0 && s.is_finite() {
            for x in &mut self.w {
                *x /= s;
            }
        } else {
            // Evidence the model cannot explain at all: start over from uniform
            // rather than divide by zero. (Unreachable while every false-failure
            // rate is above 0 and a failure probability is below 1.)
            let v = 1.0 / self.w.len() as f64;
            self.w.iter_mut().for_each(|x| *x = v);
        }
    }

    /// Marginal posterior over culprit positions.
    pub(crate) fn positions(&self) -> Vec<f64> {
        self.w.chunks(self.k()).map(|r| r.iter().sum()).collect()
    }

    /// Marginal posterior over culprit positions had the prior over the failure
    /// probability been `p^-exp` times the one in use (the prior is separable, so
    /// this is a reweighting of the columns).
    pub(crate) fn positions_reweighted(&self, exp: f64) -> Vec<f64> {
        let f: Vec<f64> = self.p.iter().map(|&p| p.powf(-exp)).collect();
        let mut out: Vec<f64> = self
            .w
            .chunks(self.k())
            .map(|r| r.iter().zip(&f).map(|(x, y)| x * y).sum())
            .collect();
        let s: f64 = out.iter().sum();
        if s > 0.0 {
            out.iter_mut().for_each(|x| *x /= s);
        }
        out
    }

    /// Posterior mean of a per-column value.
    fn mean(&self, v: &[f64]) -> f64 {
        self.w
            .chunks(self.k())
            .map(|r| r.iter().zip(v).map(|(x, y)| x * y).sum::<f64>())
            .sum()
    }

    /// Posterior means of the failure probability and of the false-failure rate.
    pub(crate) fn rate_means(&self) -> (f64, f64) {
        (self.mean(&self.p), self.mean(&self.eps))
    }

    /// Expected reduction of the entropy (nats) of the culprit position from one
    /// run at each index, for every index at once (O(n·k)).
    pub(crate) fn gains(&self) -> Vec<f64> {
        let n = self.n;
        // Per position: mass m, failing mass if bad (a) and if good (c).
        let mut m = Vec::with_capacity(n);
        let mut a = Vec::with_capacity(n);
        let mut c = Vec::with_capacity(n);
        for row in self.w.chunks(self.k()) {
            let (mut s, mut sa, mut sc) = (0.0, 0.0, 0.0);
            for ((x, p), e) in row.iter().zip(&self.p).zip(&self.eps) {
                s += x;
                sa += x * p;
                sc += x * e;
            }
            m.push(s);
            a.push(sa);
            c.push(sc);
        }
        binary_gains(&m, &a, &c)
    }
}

/// Expected reduction of the entropy (nats) of the culprit position from one
/// binary test at each index, for every index at once (O(n)). Per position `i`:
/// its mass `m[i]`, the part of it under which the test fails when the commit
/// tested is bad (at or above the culprit, `a[i]`) and when it is good (`c[i]`).
pub(crate) fn binary_gains(m: &[f64], a: &[f64], c: &[f64]) -> Vec<f64> {
    let n = m.len();
    let h_prior = -m.iter().map(|&x| xlogx(x)).sum::<f64>();
    // Suffix sums over positions > j of c, c ln c, d = m - c, d ln d.
    let mut suf = vec![[0.0f64; 4]; n + 1];
    for i in (0..n).rev() {
        let d = (m[i] - c[i]).max(0.0);
        let s = suf[i + 1];
        suf[i] = [s[0] + c[i], s[1] + xlogx(c[i]), s[2] + d, s[3] + xlogx(d)];
    }
    let (mut pa, mut pal, mut pb, mut pbl) = (0.0, 0.0, 0.0, 0.0);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let b = (m[i] - a[i]).max(0.0);
        pa += a[i];
        pal += xlogx(a[i]);
        pb += b;
        pbl += xlogx(b);
        let s = suf[i + 1];
        // Unnormalised posteriors after a failure / a pass: total Z and sum x ln x.
        let (f, sf) = (pa + s[0], pal + s[1]);
        let (g, sg) = (pb + s[2], pbl + s[3]);
        // H_post = sum over outcomes of (Z ln Z - sum x ln x).
        let h_post = xlogx(f) - sf + xlogx(g) - sg;
        out.push((h_prior - h_post).max(0.0));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains_match_brute_force() {
        let grid = [0.3, 0.7, 1.0];
        let eps = [0.02, 0.1];
        let mut j = Joint::new(7, &grid, &eps, 1.0);
        j.run(4, false, 2);
        j.run(1, true, 1);
        let fast = j.gains();
        let h = |v: &[f64]| -> f64 {
            let s: f64 = v.iter().sum();
            -v.iter().map(|&x| xlogx(x / s)).sum::<f64>()
        };
        let prior = h(&j.positions());
        for (idx, &g) in fast.iter().enumerate() {
            let mut jf = j.clone();
            let mut jp = j.clone();
            // Probability of failure.
            let pf: f64 = (0..7)
                .map(|i| {
                    (0..6)
                        .map(|q| j.w[i * 6 + q] * if i <= idx { j.p[q] } else { j.eps[q] })
                        .sum::<f64>()
                })
                .sum();
            jf.run(idx, true, 1);
            jp.run(idx, false, 1);
            let brute = prior - pf * h(&jf.positions()) - (1.0 - pf) * h(&jp.positions());
            assert!((brute - g).abs() < 1e-9, "index {idx}: {brute} vs {g}");
        }
    }
}
