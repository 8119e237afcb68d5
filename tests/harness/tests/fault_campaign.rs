//! The fault campaign, short: every kind of fault lands at least once in a
//! seeded run, and every invariant holds once the faults stop (the long
//! run is `fault-campaign`, docs/BENCHMARKS.md).

use std::time::Duration;

use harness::campaign::{CampaignOptions, CampaignReport, FaultKind, run};

async fn campaign(kinds: Vec<FaultKind>, faults: usize) -> anyhow::Result<CampaignReport> {
    let dir = harness::TestDir::new()?;
    let dir = dir.path().to_path_buf();
    let options = CampaignOptions {
        seed: 20261206,
        faults,
        orders: 25,
        duration: Duration::from_secs(40),
        products: 120,
        converge_timeout: Duration::from_secs(240),
        kinds,
        dir,
    };
    let report = run(&options).await?;
    println!("{}", report.render());
    Ok(report)
}

fn assert_holds(report: &CampaignReport, kinds: &[FaultKind]) {
    let missing: Vec<&str> = kinds
        .iter()
        .filter(|k| report.injected.get(k).copied().unwrap_or(0) == 0)
        .map(|k| k.name())
        .collect();
    assert!(missing.is_empty(), "kinds that never landed: {missing:?}");
    assert!(report.violations().is_empty(), "{}", report.render());
    assert_eq!(report.duplicates.len(), 0);
    assert_eq!(report.lost.len(), 0);
}

/// Every kind but the restored state file (see the test below).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_kind_lands_and_the_invariants_hold() -> anyhow::Result<()> {
    let kinds: Vec<FaultKind> = FaultKind::ALL
        .into_iter()
        .filter(|k| *k != FaultKind::StateRestore)
        .collect();
    let report = campaign(kinds.clone(), 30).await?;
    assert!(report.total_injected() >= 30, "{}", report.render());
    assert_holds(&report, &kinds);
    Ok(())
}

/// Review R2 (docs/OPERATIONS.md, "The agent's state file"): a state
/// file restored from an older backup keeps its incarnation and numbers
/// below what the cloud applied. The cloud sees the heartbeat's number
/// already applied and sends a resend naming the life and its last applied
/// number; the agent, finding that number past anything its file gave,
/// begins a new life and sends everything again. Prices and stock heal
/// here even without that (the agent's full passes outnumber the gap), so
/// this guards the whole campaign with the fault in it; what was lost for
/// good, an order's shipping, is guarded by `orders_e2e.rs::
/// an_order_shipped_after_the_state_file_was_restored_from_a_backup_reaches_the_shop`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_file_restored_from_an_older_backup_loses_nothing() -> anyhow::Result<()> {
    let kinds = vec![FaultKind::AgentKill, FaultKind::StateRestore];
    let report = campaign(kinds.clone(), 8).await?;
    assert_holds(&report, &kinds);
    Ok(())
}
