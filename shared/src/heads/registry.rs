//! Every head the binaries know, by name. Adding a head: its folder under `heads/` and one line
//! here (a gradient-trained head uses [`run_gradient`], a fit-once head [`run_bank`]).
use crate::heads::causal_film::CausalFilmHead;
use crate::heads::gaussian::Gaussian;
use crate::heads::mlp_ae::MlpAe;
use crate::heads::Head;
use crate::train::driver::{run_bank, run_gradient, Outcome, Setup, Task};
use crate::{Error, Result};

/// Runs one task with one head type.
pub type Runner = fn(&Setup, Task) -> Result<Outcome>;

/// A registered head.
pub struct Entry {
    pub name: &'static str,
    pub run: Runner,
}

/// The registry.
pub const HEADS: &[Entry] = &[
    Entry {
        name: CausalFilmHead::NAME,
        run: run_gradient::<CausalFilmHead>,
    },
    Entry {
        name: MlpAe::NAME,
        run: run_gradient::<MlpAe>,
    },
    Entry {
        name: Gaussian::NAME,
        run: run_bank::<Gaussian>,
    },
];

/// The entry named `name`, or an error listing the known heads.
pub fn lookup(name: &str) -> Result<&'static Entry> {
    HEADS.iter().find(|e| e.name == name).ok_or_else(|| {
        let known: Vec<&str> = HEADS.iter().map(|e| e.name).collect();
        Error::Msg(format!(
            "unknown head `{name}` (this build knows: {})",
            known.join(", ")
        ))
    })
}

/// The head named by a resolved config's top-level `head` key.
pub fn head_name(doc: &toml::Value) -> Result<String> {
    doc.get("head")
        .ok_or_else(|| Error::Msg("config has no top-level `head = \"...\"` key".into()))?
        .as_str()
        .map(str::to_string)
        .ok_or_else(|| Error::Msg("config key `head` must be a string".into()))
}

/// Runs `task` with the head the config names.
pub fn run(setup: &Setup, task: Task) -> Result<Outcome> {
    (lookup(&head_name(setup.doc)?)?.run)(setup, task)
}
