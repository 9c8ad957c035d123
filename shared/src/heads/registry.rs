//! Every head the binaries know, by name. Adding a head: its folder under `heads/` and one line
//! here (a gradient-trained head uses [`run_gradient`], a fit-once head [`run_bank`]; a fusion
//! of finished runs has a runner of its own and reads no store).
use crate::heads::ae::Ae;
use crate::heads::causal_film::CausalFilmHead;
use crate::heads::concat_mlp::ConcatMlp;
use crate::heads::gaussian::Gaussian;
use crate::heads::knn::Knn;
use crate::heads::late_fusion;
use crate::heads::mlp_ae::MlpAe;
use crate::heads::paper_ae::{audio::PaperAudioAe, video::PaperVideoAe};
use crate::heads::supcon::SupCon;
use crate::heads::video_ae::VideoAe;
use crate::heads::Head;
use crate::train::driver::{run_bank, run_gradient, Outcome, Setup, Task};
use crate::{Error, Result};

/// Runs one task with one head type.
pub type Runner = fn(&Setup, Task) -> Result<Outcome>;

/// A registered head.
pub struct Entry {
    pub name: &'static str,
    pub run: Runner,
    /// whether the head reads a feature store (`late-fusion` reads finished runs instead)
    pub reads_store: bool,
}

/// The registry.
pub const HEADS: &[Entry] = &[
    Entry {
        name: CausalFilmHead::NAME,
        run: run_gradient::<CausalFilmHead>,
        reads_store: true,
    },
    Entry {
        name: MlpAe::NAME,
        run: run_gradient::<MlpAe>,
        reads_store: true,
    },
    Entry {
        name: VideoAe::NAME,
        run: run_gradient::<VideoAe>,
        reads_store: true,
    },
    Entry {
        name: Ae::NAME,
        run: run_gradient::<Ae>,
        reads_store: true,
    },
    Entry {
        name: ConcatMlp::NAME,
        run: run_gradient::<ConcatMlp>,
        reads_store: true,
    },
    Entry {
        name: PaperAudioAe::NAME,
        run: run_gradient::<PaperAudioAe>,
        reads_store: true,
    },
    Entry {
        name: PaperVideoAe::NAME,
        run: run_gradient::<PaperVideoAe>,
        reads_store: true,
    },
    Entry {
        name: SupCon::NAME,
        run: run_gradient::<SupCon>,
        reads_store: true,
    },
    Entry {
        name: Gaussian::NAME,
        run: run_bank::<Gaussian>,
        reads_store: true,
    },
    Entry {
        name: Knn::NAME,
        run: run_bank::<Knn>,
        reads_store: true,
    },
    Entry {
        name: late_fusion::NAME,
        run: late_fusion::run,
        reads_store: false,
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
