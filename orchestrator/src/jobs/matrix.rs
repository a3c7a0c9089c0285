//! `test:` × `matrix:` → cells. The field names are `RunSpec`'s (and its
//! serde aliases); a cell is the `test:` fields with one value of every
//! matrix list put in, in the order the lists are written (the last list
//! varies fastest).

use serde_json::{Map, Value};

use crate::spec::RunSpec;

/// One combination of matrix values and the full spec it gives.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The matrix values of this cell (field, value), in matrix order; empty
    /// without a matrix.
    pub params: Vec<(String, Value)>,
    /// The spec the cell is tested with.
    pub spec: RunSpec,
}

impl Cell {
    /// A short name: `vcpus=4 scftorture="nthreads=8"`, or `default`.
    pub fn label(&self) -> String {
        if self.params.is_empty() {
            return "default".into();
        }
        self.params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// serde aliases of `RunSpec` fields and the field they name.
pub const ALIASES: [(&str, &str); 4] = [
    ("memory", "memory_mb"),
    ("duration", "duration_s"),
    ("config_fragment", "config_fragments"),
    ("stop_after_crash", "stop_after_crash_s"),
];

/// `RunSpec`'s field names (as it serializes them; those it leaves out at
/// their default included).
pub fn fields() -> Vec<String> {
    match serde_json::to_value(RunSpec::with_every_field()) {
        Ok(Value::Object(m)) => m.keys().cloned().collect(),
        _ => Vec::new(),
    }
}

/// Every name a job file may use for a `RunSpec` field.
pub fn names() -> Vec<String> {
    let mut v = fields();
    v.extend(ALIASES.iter().map(|(a, _)| a.to_string()));
    v
}

/// The field `key` names (an alias resolved), or `None` for no RunSpec field.
pub fn canonical(key: &str) -> Option<String> {
    if let Some((_, f)) = ALIASES.iter().find(|(a, _)| *a == key) {
        return Some(f.to_string());
    }
    fields().into_iter().find(|f| f == key)
}

/// A cell's matrix values and its full field map.
pub type Combination = (Vec<(String, Value)>, Map<String, Value>);

/// Every combination of the axes' values, each with `base` under it.
pub fn expand(base: &Map<String, Value>, axes: &[(String, Vec<Value>)]) -> Vec<Combination> {
    let mut out: Vec<Combination> = vec![(Vec::new(), base.clone())];
    for (key, values) in axes {
        let mut next = Vec::with_capacity(out.len() * values.len());
        for (params, map) in &out {
            for v in values {
                let mut p = params.clone();
                p.push((key.clone(), v.clone()));
                let mut m = map.clone();
                m.insert(key.clone(), v.clone());
                next.push((p, m));
            }
        }
        out = next;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_and_aliases() {
        let f = fields();
        for n in [
            "vcpus",
            "memory_mb",
            "duration_s",
            "scftorture",
            "config_fragments",
            "accel",
            "predicate",
            "stop_after_crash_s",
            "root",
            "load",
        ] {
            assert!(f.iter().any(|x| x == n), "{n} in {f:?}");
        }
        assert_eq!(canonical("memory").as_deref(), Some("memory_mb"));
        assert_eq!(canonical("vcpus").as_deref(), Some("vcpus"));
        assert_eq!(canonical("vpcus"), None);
    }

    #[test]
    fn cartesian_product_last_axis_fastest() {
        let mut base = Map::new();
        base.insert("duration_s".into(), json!(30));
        let axes = vec![
            ("vcpus".to_string(), vec![json!(4), json!(8)]),
            (
                "scftorture".to_string(),
                vec![json!("a=1"), json!("b=2"), json!("c=3")],
            ),
        ];
        let cells = expand(&base, &axes);
        assert_eq!(cells.len(), 6);
        assert_eq!(
            cells[0].0,
            vec![
                ("vcpus".into(), json!(4)),
                ("scftorture".into(), json!("a=1"))
            ]
        );
        assert_eq!(cells[1].1["scftorture"], json!("b=2"));
        assert_eq!(cells[5].1["vcpus"], json!(8));
        assert!(cells.iter().all(|(_, m)| m["duration_s"] == json!(30)));
        assert_eq!(expand(&base, &[]).len(), 1);
    }
}
