//! What the benchmark tools (`bench-sync`, `bench-platforms`) share: the
//! machine's state, CPU time of the local run's processes read from
//! `/proc`, and the arithmetic of their figures.

use std::collections::BTreeMap;

/// `x` rounded to `places` decimals (figures for a table, not money).
pub fn round(x: f64, places: i32) -> f64 {
    let f = 10f64.powi(places);
    (x * f).round() / f
}

/// The nearest-rank percentile `p` (0–100) of values sorted ascending.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len()) - 1).copied()
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` gives them.
pub fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|t| t.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// The checkout's short commit, for the figures' record.
pub fn git_commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .current_dir(crate::paths::repo_root())
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

/// Clock ticks per second for `/proc/<pid>/stat` (USER_HZ).
pub fn clock_ticks() -> f64 {
    std::process::Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| {
            String::from_utf8_lossy(&o.stdout)
                .trim()
                .parse::<f64>()
                .ok()
        })
        .filter(|t| *t > 0.0)
        .unwrap_or(100.0)
}

/// utime + stime of a process (and its reaped children's when
/// `children`), in clock ticks.
pub fn cpu_ticks(pid: u32, children: bool) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may hold spaces) start at field 3.
    let rest = &text[text.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let mut ticks = field(14)? + field(15)?;
    if children {
        ticks += field(16)? + field(17)?;
    }
    Some(ticks)
}

/// A process's resident memory in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The moto server listening on `port` (its process is private to the harness).
pub fn find_emulator_pid(port: u16) -> Option<u32> {
    let port = port.to_string();
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|entry| {
            let pid: u32 = entry.file_name().to_str()?.parse().ok()?;
            let cmdline = std::fs::read(entry.path().join("cmdline")).ok()?;
            let args: Vec<String> = cmdline
                .split(|b| *b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            let is_moto = args.iter().any(|a| a.contains("moto_server"));
            let on_port = args.windows(2).any(|w| w[0] == "-p" && w[1] == port);
            (is_moto && on_port).then_some(pid)
        })
}

/// CPU time of a set of processes (with their reaped children) between
/// its start and each reading.
pub struct CpuMeter {
    tick: f64,
    start: BTreeMap<String, (u32, u64)>,
}

impl CpuMeter {
    /// Starts counting for each named process whose pid is known.
    pub fn start(pids: &[(&str, Option<u32>)]) -> CpuMeter {
        let start = pids
            .iter()
            .filter_map(|(name, pid)| {
                let pid = (*pid)?;
                Some((name.to_string(), (pid, cpu_ticks(pid, true)?)))
            })
            .collect();
        CpuMeter {
            tick: clock_ticks(),
            start,
        }
    }

    /// CPU seconds per process since the start, to a tenth.
    pub fn seconds(&self) -> BTreeMap<String, f64> {
        self.start
            .iter()
            .map(|(name, (pid, t0))| {
                let now = cpu_ticks(*pid, true).unwrap_or(*t0);
                (
                    name.clone(),
                    round(now.saturating_sub(*t0) as f64 / self.tick, 1),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_rank_percentile_of_ten_values() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), Some(5.0));
        assert_eq!(percentile(&values, 95.0), Some(10.0));
        assert_eq!(percentile(&values, 0.0), Some(1.0));
        assert_eq!(percentile(&[], 50.0), None);
    }
}
