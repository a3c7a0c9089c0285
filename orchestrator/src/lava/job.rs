//! The LAVA job csdci submits for one run: deploy the kernel and the
//! initramfs (by URL, checked by sha256) to tmpfs, boot them with `qemu`
//! (the spec's vCPUs and memory and the local pipeline's machine as extra
//! QEMU options: the demo's CSD-lock regression did not show on LAVA's
//! default `pc` machine with default devices and `qemu64` in 4 runs, and did
//! with these; `-no-reboot` so a panic ends the guest as it does locally;
//! csdci's kernel command line),
//! and a monitor test that waits from the guest init's first line to its
//! last (`csdci: powering off`, printed on every way out), recording
//! scftorture's end of test as a LAVA test case. The definition is JSON,
//! which is YAML, so every string is quoted correctly.

use serde_json::json;

/// One job.
#[derive(Debug, Clone, PartialEq)]
pub struct JobSpec {
    /// Shown in LAVA (`csdci <commit> #<attempt>`).
    pub name: String,
    /// LAVA device type (`qemu`).
    pub device_type: String,
    /// Device tags the job needs.
    pub tags: Vec<String>,
    /// Where the worker fetches the kernel (vmlinux, booted via PVH).
    pub kernel_url: String,
    /// sha256 of the kernel file.
    pub kernel_sha256: String,
    /// Where the worker fetches the initramfs (gzip'd cpio).
    pub ramdisk_url: String,
    /// sha256 of the initramfs file.
    pub ramdisk_sha256: String,
    /// The full kernel command line.
    pub cmdline: String,
    /// Guest vCPUs.
    pub vcpus: u32,
    /// Guest RAM, MiB.
    pub memory_mb: u64,
    /// Seconds from boot until the guest must have reached its init.
    pub boot_timeout_s: u64,
    /// Seconds the test (init start to end line) may take.
    pub test_timeout_s: u64,
}

/// The guest init's first line (images/init.sh): the monitor starts here.
pub const START_MARKER: &str = "csdci: init started";

/// Why a job cannot be written.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    #[error(
        "the kernel command line '{0}' has a quote or backslash, which LAVA's qemu command line cannot carry; remove it from cmdline_extra"
    )]
    Cmdline(String),
    #[error("bad device tag '{0}' (use letters, digits, '-', '_', '.')")]
    Tag(String),
}

impl JobSpec {
    /// The job definition to submit.
    pub fn definition(&self) -> Result<String, Error> {
        if self.cmdline.contains(['"', '\'', '\\', '\n']) {
            return Err(Error::Cmdline(self.cmdline.clone()));
        }
        if let Some(t) = self.tags.iter().find(|t| {
            t.is_empty()
                || !t
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        }) {
            return Err(Error::Tag(t.clone()));
        }
        let deploy_s = 300;
        let job_s = deploy_s + self.boot_timeout_s + self.test_timeout_s + 120;
        let mut job = json!({
            "device_type": self.device_type,
            "job_name": self.name,
            "timeouts": {
                "job": {"seconds": job_s},
                "action": {"seconds": self.boot_timeout_s.max(self.test_timeout_s)},
                "connection": {"seconds": 120},
            },
            "priority": "medium",
            "visibility": "public",
            "context": {
                "arch": "amd64",
                // The local pipeline's machine (vm::qemu): q35, `-cpu max`,
                // multi-threaded TCG (after a device's own `-enable-kvm`,
                // QEMU tries KVM first), no default devices but the serial
                // console LAVA reads. Later options win over the device's.
                "extra_options": [
                    format!("-smp {}", self.vcpus),
                    format!("-m {}", self.memory_mb),
                    "-machine q35",
                    "-cpu max",
                    "-accel tcg,thread=multi",
                    "-nodefaults",
                    "-serial stdio",
                    "-no-reboot",
                ],
            },
            "actions": [
                {"deploy": {
                    "to": "tmpfs",
                    "timeout": {"seconds": deploy_s},
                    "images": {
                        "kernel": {
                            "image_arg": format!("-kernel {{kernel}} -append \"{}\"", self.cmdline),
                            "url": self.kernel_url,
                            "sha256sum": self.kernel_sha256,
                        },
                        "ramdisk": {
                            "image_arg": "-initrd {ramdisk}",
                            "url": self.ramdisk_url,
                            "sha256sum": self.ramdisk_sha256,
                        },
                    },
                }},
                {"boot": {
                    "method": "qemu",
                    "media": "tmpfs",
                    "timeout": {"seconds": self.boot_timeout_s},
                }},
                {"test": {
                    "timeout": {"seconds": self.test_timeout_s},
                    "monitors": [{
                        "name": "csdci",
                        "start": START_MARKER,
                        "end": super::log::END_MARKER,
                        "pattern": "(?P<test_case_id>scftorture): --- End of test: (?P<result>SUCCESS|FAILURE)",
                        "fixupdict": {"SUCCESS": "pass", "FAILURE": "fail"},
                    }],
                }},
            ],
        });
        if !self.tags.is_empty() {
            job["tags"] = json!(self.tags);
        }
        Ok(serde_json::to_string_pretty(&job).unwrap_or_default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> JobSpec {
        JobSpec {
            name: "csdci 0123abcd #0".into(),
            device_type: "qemu".into(),
            tags: vec![],
            kernel_url: "file:///var/lib/csdci/lava/artifacts/ab/vmlinux".into(),
            kernel_sha256: "ab".into(),
            ramdisk_url: "file:///var/lib/csdci/lava/artifacts/cd/initramfs.cpio.gz".into(),
            ramdisk_sha256: "cd".into(),
            cmdline: "console=ttyS0,115200 csdlock_debug=1 panic=-1".into(),
            vcpus: 8,
            memory_mb: 2048,
            boot_timeout_s: 300,
            test_timeout_s: 320,
        }
    }

    #[test]
    fn the_job_boots_the_spec_and_waits_for_the_init_end_line() {
        let text = spec().definition().unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        assert_eq!(v["device_type"], "qemu");
        let opts = v["context"]["extra_options"].as_array().unwrap();
        assert!(opts.contains(&json!("-smp 8")) && opts.contains(&json!("-m 2048")));
        assert!(opts.contains(&json!("-no-reboot")));
        for o in ["-machine q35", "-cpu max", "-nodefaults", "-serial stdio"] {
            assert!(opts.contains(&json!(o)), "{o}");
        }
        let k = &v["actions"][0]["deploy"]["images"]["kernel"];
        assert_eq!(
            k["image_arg"],
            "-kernel {kernel} -append \"console=ttyS0,115200 csdlock_debug=1 panic=-1\""
        );
        assert_eq!(k["sha256sum"], "ab");
        assert_eq!(v["actions"][1]["boot"]["method"], "qemu");
        let m = &v["actions"][2]["test"]["monitors"][0];
        assert_eq!(m["start"], START_MARKER);
        assert_eq!(m["end"], "csdci: powering off");
        assert_eq!(v["actions"][2]["test"]["timeout"]["seconds"], 320);
        assert!(v.get("tags").is_none());
    }

    #[test]
    fn tags_are_asked_for_and_checked() {
        let mut s = spec();
        s.tags = vec!["big".into(), "x86_64".into()];
        let v: serde_json::Value = serde_json::from_str(&s.definition().unwrap()).unwrap();
        assert_eq!(v["tags"], json!(["big", "x86_64"]));
        s.tags = vec!["a b".into()];
        assert!(matches!(s.definition(), Err(Error::Tag(_))));
    }

    #[test]
    fn a_command_line_with_quotes_is_refused() {
        let mut s = spec();
        s.cmdline = "console=ttyS0 foo=\"x\"".into();
        let e = s.definition().unwrap_err().to_string();
        assert!(e.contains("cmdline_extra"), "{e}");
    }
}
