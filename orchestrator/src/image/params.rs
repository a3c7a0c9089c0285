//! The per-run parameters the guest init reads from `/csdci/params`.

use serde::{Deserialize, Serialize};

use super::{Error, Load};

/// What the guest's init does in one run.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestParams {
    /// scftorture module parameters, e.g. `nthreads=16 onoff_holdoff=50 onoff_interval=100`.
    pub scftorture: String,
    /// Seconds scftorture runs before it is unloaded.
    pub duration_s: u64,
    /// What runs beside scftorture ([`Load`]); written to the params file
    /// only when there is one, so runs without it keep their params.
    #[serde(default)]
    pub load: Load,
}

impl GuestParams {
    /// The params file (shell variable assignments the init sources). Only
    /// `name=value` words made of `[A-Za-z0-9_.,:+=-]` are accepted, so the
    /// value can never break out of its quotes.
    pub fn render(&self) -> Result<String, Error> {
        let ok = |c: char| c.is_ascii_alphanumeric() || "_.,:+=- ".contains(c);
        if let Some(bad) = self.scftorture.chars().find(|c| !ok(*c)) {
            return Err(Error::BadParams {
                params: self.scftorture.clone(),
                bad,
            });
        }
        if self.duration_s == 0 {
            return Err(Error::BadDuration);
        }
        let words: Vec<&str> = self.scftorture.split_whitespace().collect();
        let mut out = format!(
            "CSDCI_SCFTORTURE='{}'\nCSDCI_DURATION_S={}\n",
            words.join(" "),
            self.duration_s
        );
        match self.load {
            Load::None => {}
            Load::Tlb { procs } => {
                out.push_str(&format!("CSDCI_LOAD=tlb\nCSDCI_LOAD_PROCS={procs}\n"));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_shell_assignments() {
        let p = GuestParams {
            scftorture: " nthreads=16  onoff_interval=100 ".into(),
            duration_s: 30,
            load: Load::None,
        };
        assert_eq!(
            p.render().unwrap(),
            "CSDCI_SCFTORTURE='nthreads=16 onoff_interval=100'\nCSDCI_DURATION_S=30\n"
        );
        let p = GuestParams {
            load: Load::Tlb { procs: 2 },
            ..p
        };
        assert_eq!(
            p.render().unwrap(),
            "CSDCI_SCFTORTURE='nthreads=16 onoff_interval=100'\nCSDCI_DURATION_S=30\nCSDCI_LOAD=tlb\nCSDCI_LOAD_PROCS=2\n"
        );
    }

    #[test]
    fn rejects_shell_metacharacters_and_zero_duration() {
        let p = GuestParams {
            scftorture: "nthreads=16'; reboot".into(),
            duration_s: 30,
            load: Load::None,
        };
        let e = p.render().unwrap_err().to_string();
        assert!(e.contains("'''") || e.contains("character '''"), "{e}");
        let p = GuestParams {
            scftorture: String::new(),
            duration_s: 0,
            load: Load::None,
        };
        assert!(matches!(p.render(), Err(Error::BadDuration)));
    }
}
