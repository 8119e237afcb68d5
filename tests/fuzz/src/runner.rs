//! Runs a target over seeded inputs, catching panics, and counts outcomes.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::sync::Once;
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;

/// A parser under fuzz: makes inputs and checks what the parser does with them.
pub trait Target {
    type Input;
    /// The name in reports.
    fn name(&self) -> &'static str;
    /// The `index`th input (every input comes from `rng`, so a run is
    /// reproduced by its seed).
    fn generate(&self, rng: &mut StdRng, index: u64) -> Self::Input;
    /// Feeds one input to the parser: the kind of outcome, or the property
    /// the outcome broke.
    fn check(&self, input: &Self::Input) -> Result<&'static str, String>;
    /// The input, shortened, for a failure report.
    fn describe(&self, input: &Self::Input) -> String;
}

/// What a run found.
#[derive(Debug, Clone)]
pub struct Report {
    pub target: &'static str,
    pub inputs: u64,
    pub panics: u64,
    /// Inputs whose outcome broke a property (an unsigned delivery
    /// accepted, an order out of bounds, a round trip that changed data).
    pub violations: u64,
    /// How many inputs ended in each kind of outcome.
    pub outcomes: BTreeMap<&'static str, u64>,
    /// The first few panics or violations of different kinds, with their inputs.
    pub failures: Vec<String>,
    pub elapsed: Duration,
}

impl Report {
    pub fn inputs_per_second(&self) -> f64 {
        self.inputs as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    pub fn failures(&self) -> u64 {
        self.panics + self.violations
    }

    pub fn count(&self, outcome: &str) -> u64 {
        self.outcomes.get(outcome).copied().unwrap_or(0)
    }
}

const MAX_FAILURES_KEPT: usize = 5;

/// Two failures are of a kind when their first 40 characters match.
fn same_kind(kept: &str, new: &str) -> bool {
    kept.chars().take(40).eq(new.chars().take(40))
}

thread_local! {
    static CAPTURING: Cell<bool> = const { Cell::new(false) };
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// A panic inside a checked input is recorded, not printed; any other
/// panic (a failing test's assert) goes to the previous hook as usual.
fn install_panic_hook() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if CAPTURING.get() {
                LAST_PANIC.set(Some(info.to_string()));
            } else {
                previous(info);
            }
        }));
    });
}

/// Runs `inputs` inputs of `target` from `seed`.
pub fn run<T: Target>(target: &T, seed: u64, inputs: u64) -> Report {
    install_panic_hook();
    let mut rng = StdRng::seed_from_u64(seed);
    let mut report = Report {
        target: target.name(),
        inputs,
        panics: 0,
        violations: 0,
        outcomes: BTreeMap::new(),
        failures: Vec::new(),
        elapsed: Duration::ZERO,
    };
    let started = Instant::now();
    for index in 0..inputs {
        let input = target.generate(&mut rng, index);
        CAPTURING.set(true);
        let result = panic::catch_unwind(AssertUnwindSafe(|| target.check(&input)));
        CAPTURING.set(false);
        let failure = match result {
            Ok(Ok(outcome)) => {
                *report.outcomes.entry(outcome).or_default() += 1;
                None
            }
            Ok(Err(violation)) => {
                report.violations += 1;
                Some(format!("violation: {violation}"))
            }
            Err(_) => {
                report.panics += 1;
                let message = LAST_PANIC.take().unwrap_or_default();
                Some(format!("panic: {message}"))
            }
        };
        if let Some(failure) = failure
            && report.failures.len() < MAX_FAILURES_KEPT
            && !report.failures.iter().any(|f| same_kind(f, &failure))
        {
            report.failures.push(format!(
                "{failure}\n  input #{index} (seed {seed:#x}): {}",
                target.describe(&input)
            ));
        }
    }
    report.elapsed = started.elapsed();
    report
}

/// The reports as a Markdown table.
pub fn table(reports: &[Report]) -> String {
    let mut out = String::from(
        "| target | inputs | inputs/s | panics | violations | outcomes |\n|---|---:|---:|---:|---:|---|\n",
    );
    for r in reports {
        let outcomes: Vec<String> = r.outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
        out.push_str(&format!(
            "| {} | {} | {:.0} | {} | {} | {} |\n",
            r.target,
            r.inputs,
            r.inputs_per_second(),
            r.panics,
            r.violations,
            outcomes.join(", ")
        ));
    }
    out
}
