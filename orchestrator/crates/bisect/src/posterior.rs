//! The joint posterior over (culprit position, per-run failure probability of a bad
//! commit), and the expected information gain of one more run at each candidate.

/// `x ln x`, with `0 ln 0 = 0`.
fn xlogx(x: f64) -> f64 {
    if x > 0.0 { x * x.ln() } else { 0.0 }
}

/// Joint weights `w[i * k + g]`: culprit at position `i`, failure probability
/// `grid[g]`. Kept normalised to sum 1.
#[derive(Debug, Clone)]
pub(crate) struct Joint {
    n: usize,
    grid: Vec<f64>,
    false_fail: f64,
    w: Vec<f64>,
}

impl Joint {
    /// Uniform prior over positions; prior over the grid proportional to
    /// `p^-prior_exp` (0: uniform, 1: log-uniform).
    pub(crate) fn new(n: usize, grid: &[f64], false_fail: f64, prior_exp: f64) -> Self {
        let row: Vec<f64> = grid.iter().map(|&p| p.powf(-prior_exp)).collect();
        let mut w = Vec::with_capacity(n * grid.len());
        for _ in 0..n {
            w.extend_from_slice(&row);
        }
        let mut j = Joint {
            n,
            grid: grid.to_vec(),
            false_fail,
            w,
        };
        j.normalise();
        j
    }

    fn k(&self) -> usize {
        self.grid.len()
    }

    /// Multiplies in the likelihood of one run at `index` that failed (`fail`) or
    /// passed, `times` times over.
    pub(crate) fn run(&mut self, index: usize, fail: bool, times: u32) {
        let k = self.k();
        let t = times as i32;
        let bad: Vec<f64> = self
            .grid
            .iter()
            .map(|&p| if fail { p } else { 1.0 - p }.powi(t))
            .collect();
        let eps = self.false_fail;
        let good = if fail { eps } else { 1.0 - eps }.powi(t);
        for i in 0..self.n {
            let row = &mut self.w[i * k..(i + 1) * k];
            if i <= index {
                for (x, l) in row.iter_mut().zip(&bad) {
                    *x *= l;
                }
            } else {
                for x in row.iter_mut() {
                    *x *= good;
                }
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
            // rather than divide by zero. (Unreachable with false_fail > 0 and a
            // grid point below 1.)
            let v = 1.0 / self.w.len() as f64;
            self.w.iter_mut().for_each(|x| *x = v);
        }
    }

    /// Marginal posterior over culprit positions.
    pub(crate) fn positions(&self) -> Vec<f64> {
        self.w.chunks(self.k()).map(|r| r.iter().sum()).collect()
    }

    /// Marginal posterior over culprit positions had the prior over the grid been
    /// `p^-exp` times the one in use (the prior is separable, so this is a
    /// reweighting of the grid columns).
    pub(crate) fn positions_reweighted(&self, exp: f64) -> Vec<f64> {
        let f: Vec<f64> = self.grid.iter().map(|&p| p.powf(-exp)).collect();
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

    /// Marginal posterior over the failure-probability grid.
    pub(crate) fn rates(&self) -> Vec<f64> {
        let k = self.k();
        let mut out = vec![0.0; k];
        for row in self.w.chunks(k) {
            for (o, x) in out.iter_mut().zip(row) {
                *o += x;
            }
        }
        out
    }

    /// Expected reduction of the entropy (nats) of the culprit position from one
    /// run at each index, for every index at once (O(n·k)).
    pub(crate) fn gains(&self) -> Vec<f64> {
        let k = self.k();
        let eps = self.false_fail;
        let n = self.n;
        let mut m = Vec::with_capacity(n);
        let mut a = Vec::with_capacity(n);
        for row in self.w.chunks(k) {
            let mut s = 0.0;
            let mut sa = 0.0;
            for (x, p) in row.iter().zip(&self.grid) {
                s += x;
                sa += x * p;
            }
            m.push(s);
            a.push(sa);
        }
        let total_m: f64 = m.iter().sum();
        let total_ml: f64 = m.iter().map(|&x| xlogx(x)).sum();
        let h_prior = -total_ml;
        let (leps, l1eps) = (xlogx(eps), xlogx(1.0 - eps));
        let (mut pa, mut pal, mut pb, mut pbl, mut pm, mut pml) = (0.0, 0.0, 0.0, 0.0, 0.0, 0.0);
        let mut out = Vec::with_capacity(n);
        for i in 0..n {
            let b = (m[i] - a[i]).max(0.0);
            pa += a[i];
            pal += xlogx(a[i]);
            pb += b;
            pbl += xlogx(b);
            pm += m[i];
            pml += xlogx(m[i]);
            let mt = (total_m - pm).max(0.0);
            let mlt = total_ml - pml;
            // Unnormalised posteriors after a failure / a pass, as sum x and sum x ln x.
            let f = pa + eps * mt;
            let sf = pal + eps * mlt + leps * mt;
            let g = pb + (1.0 - eps) * mt;
            let sg = pbl + (1.0 - eps) * mlt + l1eps * mt;
            // H_post = sum over outcomes o of Z_o ln Z_o - sum x ln x.
            let h_post = xlogx(f) - sf + xlogx(g) - sg;
            out.push((h_prior - h_post).max(0.0));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gains_match_brute_force() {
        let grid = [0.3, 0.7, 1.0];
        let mut j = Joint::new(7, &grid, 0.02, 1.0);
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
                    (0..3)
                        .map(|q| j.w[i * 3 + q] * if i <= idx { grid[q] } else { 0.02 })
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
